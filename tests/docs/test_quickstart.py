"""The README's Python quickstart: ``freezedsl.lint`` after a plain ``import freezedsl``,
and why the example freezes before it builds the optimizer."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_lint_is_an_attribute_of_the_package_without_importing_torch() -> None:
    code = (
        "import sys, freezedsl\n"
        "lint = freezedsl.lint\n"
        "assert 'torch' not in sys.modules, 'freezedsl.lint imported torch'\n"
        "assert callable(lint.assert_ok)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_attribute_still_raises() -> None:
    import freezedsl

    with pytest.raises(AttributeError, match="no attribute 'lnt'"):
        _ = freezedsl.lnt


def test_optimizer_built_before_the_freeze_is_reported() -> None:
    """The order the README used to show: the check names every frozen parameter still
    in the optimizer, and the README's order (freeze, then optimizer) passes."""
    torch = pytest.importorskip("torch")
    import freezedsl
    from freezedsl.lint import FreezeLintError

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    early = torch.optim.AdamW(p for p in model.parameters() if p.requires_grad)
    freezedsl.apply(model, "freeze all; unfreeze children[1]")
    with pytest.raises(FreezeLintError, match="FZ301") as info:
        freezedsl.lint.assert_ok(model, early)
    assert "0.weight" in str(info.value) and "0.bias" in str(info.value)

    late = torch.optim.AdamW(p for p in model.parameters() if p.requires_grad)
    freezedsl.lint.assert_ok(model, late)
