"""One finding per mistake: runtime findings grouped by rule and module subtree (issue 12)."""

from __future__ import annotations

from freezedsl.lint.grouping import group_runtime
from freezedsl.lint.registry import Diagnostic, Severity


def fz(code: str, obj: str | None, path: str = "train.py") -> Diagnostic:
    return Diagnostic(
        code, f"frozen parameter {obj} is in SGD", path, obj=obj, severity=Severity.WARNING
    )


def test_one_frozen_stage_is_one_finding() -> None:
    names = [
        f"layer1.{b}.{m}.{w}"
        for b in range(3)
        for m in ("conv1", "bn1")
        for w in ("weight", "bias")
    ]
    found = group_runtime([fz("FZ301", n) for n in names] + [fz("FZ301", "fc.weight")])
    assert [d.obj for d in found] == ["layer1", "fc.weight"]
    assert found[0].message.startswith(
        "layer1 (12 tensors): frozen parameter layer1.0.conv1.weight"
    )
    assert "and 11 more; --verbose lists them" in found[0].message
    assert found[0].extra["tensors"] == names
    assert found[1] == fz("FZ301", "fc.weight")  # a single finding stays as it is


def test_groups_split_by_code_top_module_and_file() -> None:
    diags = [
        fz("FZ301", "0.weight"),
        fz("FZ301", "0.bias"),
        fz("FZ302", "0.weight"),
        fz("FZ301", "2.weight"),
        fz("FZ301", "2.bias"),
        fz("FZ301", "0.weight", path="other.py"),
        Diagnostic("FZ304", "nothing trainable", "train.py"),
        Diagnostic("FZ204", "static", "train.py", line=3),
    ]
    found = group_runtime(diags)
    assert [(d.code, d.obj, d.path) for d in found] == [
        ("FZ301", "0", "train.py"),
        ("FZ302", "0.weight", "train.py"),
        ("FZ301", "2", "train.py"),
        ("FZ301", "0.weight", "other.py"),
        ("FZ304", None, "train.py"),
        ("FZ204", None, "train.py"),
    ]


def test_norm_modules_are_counted_as_modules() -> None:
    found = group_runtime([fz("FZ306", "backbone.bn1"), fz("FZ306", "backbone.layer1.0.bn1")])
    assert [d.obj for d in found] == ["backbone"] and "(2 modules)" in found[0].message
