"""The wheel's package list names every package in the source tree.

pyproject.toml lists packages by hand (grammar/ ships as freezedsl.grammar, which
automatic discovery would not map); a new subpackage missing from the list installs
fine in editable mode, as CI does, and is absent from a built wheel.
"""

from __future__ import annotations

import pathlib

import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_package_directory_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "freezedsl").rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == {"freezedsl.grammar"}
