"""Never reaches a step within any reasonable timeout (e.g. a slow download)."""

import time

import torch  # noqa: F401

time.sleep(120)
