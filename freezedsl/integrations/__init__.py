"""Integrations with training frameworks.

Each submodule imports its framework on import, so ``import freezedsl`` never does:
``from freezedsl.integrations.lightning import FreezeCallback`` needs Lightning.
"""
