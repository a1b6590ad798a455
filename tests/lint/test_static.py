"""Tests of the static FZ2xx checks (``freezedsl.lint.static``).

Each file in ``static_cases/`` holds code that must be reported and correct twins that
must not be. A finding is expected exactly where a line says ``# expect: CODE`` or
``# expect: CODE:COL`` (several separated by commas), in the style of flake8-bugbear's
test files; the comparison is exact, so a twin that gets reported fails the test.
"""

from __future__ import annotations

import collections
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezedsl.lint.registry import RULES, Severity
from freezedsl.lint.static import check_file, check_source

CASES = Path(__file__).parent / "static_cases"
CASE_FILES = sorted(CASES.glob("FZ*.py"))
EXPECT = re.compile(r"#\s*expect:\s*(.+)$")
ITEM = re.compile(r"^(FZ\d{3})(?::(\d+))?$")
CODES = {
    "FZ002": "python-syntax-error",
    "FZ201": "optimizer-before-freeze",
    "FZ202": "unfiltered-optimizer",
    "FZ203": "head-frozen-by-later-loop",
    "FZ204": "requires-grad-on-module",
    "FZ205": "misspelled-requires-grad",
    "FZ206": "substring-name-match",
    "FZ207": "freeze-after-ddp",
    "FZ208": "train-undoes-eval",
    "FZ209": "pretrained-deprecated",
    "FZ210": "unfreeze-all-after-freeze",
    "FZ211": "named-modules-root-selected",
    "FZ212": "nothing-trainable",
    "FZ213": "manual-update-ignores-requires-grad",
    "FZ214": "frozen-norm-in-train-mode",
    "FZ215": "param-group-loop-ignores-missing-grad",
    "FZ216": "requires-grad-guarded-by-itself",
    "FZ217": "zeroed-grad-with-weight-decay",
    "FZ218": "unfreeze-after-filtered-optimizer",
}


def expectations(text: str) -> list[tuple[int, str, int | None]]:
    """``(line, code, col or None)`` for every ``# expect:`` item in ``text``."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        m = EXPECT.search(line)
        if not m:
            continue
        for item in m.group(1).split(","):
            im = ITEM.match(item.strip())
            assert im, f"bad expectation {item!r} on line {lineno}"
            out.append((lineno, im.group(1), int(im.group(2)) if im.group(2) else None))
    return out


def test_case_files_exist_for_every_check() -> None:
    prefixes = {p.name[:5] for p in CASE_FILES}
    assert prefixes == {code for code in CODES if code != "FZ002"}


@pytest.mark.parametrize("case", CASE_FILES, ids=lambda p: p.stem)
def test_case_file(case: Path) -> None:
    text = case.read_text(encoding="utf-8")
    expected = expectations(text)
    found = check_file(str(case))
    got = collections.Counter((d.line, d.code) for d in found)
    want = collections.Counter((line, code) for line, code, _ in expected)
    assert got == want, "\n".join(d.format() for d in found)
    positions = {(d.line, d.col, d.code) for d in found}
    for line, code, col in expected:
        if col is not None:
            assert (line, col, code) in positions, f"{code} expected at {line}:{col}"
    own = case.name[:5]
    if not case.name.startswith("FZ209_other") and "_twin" not in case.name:
        assert any(code == own for _, code, _ in expected), "a case file flags its own code"
    assert all(d.path == str(case) for d in found)


def test_rules_registered() -> None:
    for code, name in CODES.items():
        rule = RULES[code]
        assert rule.name == name
        doc = rule.doc()
        assert "## What it does" in doc and "## Use instead" in doc
    assert RULES["FZ002"].severity is Severity.ERROR


def test_findings_sorted_and_severity() -> None:
    text = (
        "import torch\n"
        "def f(model):\n"
        "    model.layer1.requires_grad = False; p.require_grad = 1\n"
        "    opt = torch.optim.SGD(model.parameters())\n"
        "    model.requires_grad_(False)\n"
    )
    found = check_source("x.py", text)
    assert [(d.line, d.col, d.code) for d in found] == [
        (3, 5, "FZ204"),
        (3, 43, "FZ205"),
        (4, 11, "FZ201"),
    ]
    assert found[0].severity is RULES["FZ204"].severity
    assert found[0].format().startswith("x.py:3:5: FZ204 ")


def test_message_is_one_line_with_the_fix() -> None:
    (d,) = check_source("x.py", "model.layer1.requires_grad = False\n")
    assert "\n" not in d.message
    assert "model.layer1.requires_grad_(False)" in d.message
    assert d.obj == "model.layer1"


def test_syntax_error_gives_fz002_with_position() -> None:
    (d,) = check_source("bad.py", "x = 1\ndef f(:\n    pass\n")
    assert (d.code, d.line, d.col) == ("FZ002", 2, 7)
    assert d.severity is Severity.ERROR
    assert "syntax error" in d.message


def test_nul_byte_and_deep_nesting_give_fz002() -> None:
    (d,) = check_source("nul.py", "x = 1\ny = 2\x00\n")
    assert (d.code, d.line, d.col) == ("FZ002", 2, 6)
    (d,) = check_source("deep.py", "x = " + "-" * 5000 + "1\n")
    assert d.code == "FZ002"


def test_non_utf8_bytes_do_not_crash(tmp_path: Path) -> None:
    bad = tmp_path / "latin.py"
    bad.write_bytes(b"# caf\xe9 \xff\nmodel.requires_grad = False\n")
    (d,) = check_file(str(bad))
    assert (d.code, d.line, d.col) == ("FZ204", 2, 1)


def test_rejected_coding_cookie_is_fz002(tmp_path: Path) -> None:
    bad = tmp_path / "unknown.py"
    bad.write_bytes(
        b"#!/usr/bin/env python\n# -*- coding: klingon -*-\nmodel.requires_grad = False\n"
    )
    (d,) = check_file(str(bad))
    assert (d.code, d.line, d.col) == ("FZ002", 2, 1)
    assert "klingon" in d.message and "\n" not in d.message
    clash = tmp_path / "clash.py"
    clash.write_bytes(b"\xef\xbb\xbf# coding: latin-1\nx = 1\n")
    (d,) = check_file(str(clash))
    assert (d.code, d.line) == ("FZ002", 1)


def test_coding_cookie_and_bom(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie.py"
    cookie.write_bytes(b"# -*- coding: latin-1 -*-\ns = '\xe9'; model.requires_grad = False\n")
    (d,) = check_file(str(cookie))
    assert (d.line, d.col) == (2, 10)
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfmodel.requires_grad = False\n")
    assert [(d.line, d.col) for d in check_file(str(bom))] == [(1, 1)]


def test_columns_count_characters_not_bytes() -> None:
    (d,) = check_source("x.py", "s = 'ééé'; p.require_grad = False\n")
    assert (d.code, d.col) == ("FZ205", 14)


def test_no_trigger_words_only_parses() -> None:
    assert check_source("x.py", "import os\nprint(os.getcwd())\n") == []


def test_helpers_in_other_scopes_are_independent() -> None:
    text = (
        "import torch\n"
        "def build(model):\n"
        "    return torch.optim.SGD(model.parameters())\n"
        "def freeze(model):\n"
        "    model.requires_grad_(False)\n"
    )
    assert check_source("x.py", text) == []


# Lines from the case files, shuffled and re-indented, reach deep into the checks with
# code that almost parses; arbitrary text covers the parser-error paths.
_LINES = [
    line
    for p in CASE_FILES
    for line in p.read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.lstrip().startswith(("#", '"'))
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    for d in check_source("h.py", text):
        assert d.line is None or d.line >= 1
        assert d.col is None or d.col >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(_LINES), st.integers(min_value=0, max_value=3)),
        min_size=1,
        max_size=25,
    )
)
def test_never_raises_on_shuffled_case_lines(lines: list[tuple[str, int]]) -> None:
    text = "\n".join("    " * depth + line.strip() for line, depth in lines) + "\n"
    for d in check_source("h.py", text):
        assert d.code in CODES
        assert d.line is not None and d.line >= 1


def test_parser_warnings_are_not_printed(recwarn: pytest.WarningsRecorder) -> None:
    assert check_source("w.py", 'import re\nre.match("\\d", s)\nx = 1if 1 else 2\n') == []
    assert not [w for w in recwarn if issubclass(w.category, (SyntaxWarning, DeprecationWarning))]


PRELUDE = "import torch\nimport torchvision\nfrom torch import nn\n"


@pytest.mark.parametrize("code", [c for c in CODES if c != "FZ002"])
def test_documented_example_flagged_and_twin_silent(code: str) -> None:
    """The rule text's example is reported with its own code; its "use instead" is clean."""
    rule = RULES[code]
    flagged = {d.code for d in check_source("example.py", PRELUDE + rule.example)}
    assert code in flagged
    assert check_source("twin.py", PRELUDE + rule.use_instead) == []


def test_summaries_follow_imports_of_nearby_files(tmp_path: Path) -> None:
    pkg = tmp_path / "proj"
    (pkg / "utils").mkdir(parents=True)
    (pkg / "utils" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "utils" / "freezing.py").write_text(
        "def set_requires_grad(nets, requires_grad=False):\n"
        "    for net in nets:\n"
        "        for p in net.parameters():\n"
        "            p.requires_grad = requires_grad\n",
        encoding="utf-8",
    )
    train = pkg / "train.py"
    train.write_text(
        "import torch\n"
        "from utils.freezing import set_requires_grad\n"
        "from .utils import freezing\n"
        "def main(model):\n"
        "    opt = torch.optim.Adam(model.parameters())\n"
        "    set_requires_grad([model.encoder], False)\n"
        "    return opt\n"
        "def twin(model):\n"
        "    opt = torch.optim.Adam(model.parameters())\n"
        "    set_requires_grad([model.encoder], True)\n"
        "    return opt\n",
        encoding="utf-8",
    )
    found = check_file(str(train))
    assert [(d.line, d.code) for d in found] == [(5, "FZ201")]
    # an import that does not resolve on disk is opaque, as before
    alone = tmp_path / "alone.py"
    alone.write_text(train.read_text(encoding="utf-8"), encoding="utf-8")
    assert check_file(str(alone)) == []


GOLDEN = Path(__file__).parent / "golden" / "static_messages.txt"


def test_messages_golden() -> None:
    """Every message of the case files, word for word (``UPDATE_GOLDEN=1`` rewrites it
    after an intended change): a message is one line naming the fix."""
    out = []
    for case in CASE_FILES:
        for d in check_file(str(case)):
            out.append(f"{case.name}:{d.line}:{d.col}: {d.code} {d.message}")
    text = "\n".join(out) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.read_text(encoding="utf-8") == text
