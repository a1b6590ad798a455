"""Exits with code 3 before stepping (e.g. a missing dataset)."""

import sys

import torch  # noqa: F401

print("dataset not found", file=sys.stderr)
sys.exit(3)
