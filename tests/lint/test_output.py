"""Output formats of the linter, pinned by golden files under ``tests/lint/golden``.

Rewrite the golden files after an intended change with ``UPDATE_GOLDEN=1 pytest
tests/lint/test_output.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from freezedsl.lint import output
from freezedsl.lint.registry import Diagnostic, Rule, Severity
from freezedsl.lint.runner import LintReport, RunSummary, _sort_key

GOLDEN = Path(__file__).parent / "golden"

RULES = {
    r.code: r
    for r in (
        Rule(
            "FZ101",
            "selector-matches-nothing",
            Severity.WARNING,
            "A selector matches no parameter.",
            "Flags selectors that select nothing.",
            "A typo freezes nothing.",
            "freeze hed.*",
            "freeze head.*",
        ),
        Rule(
            "FZ201",
            "optimizer-before-freeze",
            Severity.ERROR,
            "The optimizer is built before freezing.",
            "Flags optimizers built before requires_grad changes.",
            "Frozen params still get updates.",
            "opt = SGD(m.parameters())\nfreeze(m)",
            "freeze(m)\nopt = SGD(trainable(m))",
        ),
        Rule(
            "FZ204",
            "frozen-param-in-optimizer",
            Severity.WARNING,
            "Frozen parameters are in the optimizer.",
            "Flags parameter groups with frozen parameters.",
            "Weight decay may still change them.",
            "SGD(m.parameters())",
            "SGD(p for p in m.parameters() if p.requires_grad)",
        ),
        Rule(
            "FZ301",
            "frozen-param-changed",
            Severity.ERROR,
            "A frozen parameter changed during training.",
            "Compares frozen parameters before and after steps.",
            "Something still updates them.",
            "opt = AdamW(m.parameters(), weight_decay=0.1)",
            "opt = AdamW(trainable(m), weight_decay=0.1)",
        ),
    )
}

SOURCES = {
    "a.py": "import torch\n\nfrom torch import optim, nn\n"
    + "\n" * 6
    + "opt = optim.SGD(model.parameters())\n",
    "rules/freeze.frz": "# rules\nfreeze  hed.*\n",
}


def fixed_report() -> LintReport:
    """A fixed set of findings covering every shape a renderer must handle."""
    diagnostics = [
        Diagnostic(
            "FZ201",
            "optimizer created before freezing",
            "a.py",
            line=3,
            col=5,
            severity=Severity.ERROR,
        ),
        Diagnostic(
            "FZ204",
            "parameter group 0 contains 12 frozen parameters",
            "a.py",
            line=10,
            col=7,
            extra={"end_line": 10, "end_col": 36, "group": 0},
        ),
        Diagnostic(
            "FZ101",
            "selector `hed.*` matches nothing; did you mean `head.*`?",
            "rules/freeze.frz",
            line=2,
            col=9,
        ),
        Diagnostic("FZ999", "50% of params: a, b\nsecond line", "rules/freeze.frz", line=2, col=1),
        Diagnostic(
            "FZ301",
            "frozen parameter changed after 3 steps (max |delta| 0.02)",
            "train.py",
            obj="model.fc.weight",
            severity=Severity.ERROR,
        ),
        Diagnostic(
            "FZ301",
            "frozen buffer changed",
            "",
            obj="model.bn.running_mean",
            severity=Severity.ERROR,
        ),
    ]
    run = RunSummary("train.py", ("cfg.yaml",), 0, True, None, ("model",), ("opt",))
    diagnostics.sort(key=_sort_key)
    return LintReport(
        diagnostics=diagnostics, files=["a.py", "rules/freeze.frz"], run=run, sources=dict(SOURCES)
    )


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} differs; UPDATE_GOLDEN=1 rewrites it"
    )


@pytest.mark.parametrize(
    ("name", "fmt", "kwargs"),
    [
        ("text.txt", "text", {}),
        ("text_show_source.txt", "text", {"show_source": True}),
        ("text_statistics.txt", "text", {"statistics": True}),
        ("grouped.txt", "grouped", {"show_source": True}),
        ("json.json", "json", {}),
        ("json_statistics.json", "json", {"statistics": True}),
        ("github.txt", "github", {}),
        ("sarif.json", "sarif", {"tool_version": "0.1.0"}),
    ],
)
def test_golden(name: str, fmt: str, kwargs: dict[str, Any]) -> None:
    check_golden(name, output.render(fixed_report(), fmt, RULES, **kwargs))


def test_text_basics() -> None:
    lines = output.render_text(fixed_report())
    assert lines[0] == "a.py:3:5: FZ201 optimizer created before freezing"
    assert (
        "train.py: FZ301 frozen parameter changed after 3 steps (max |delta| 0.02) [model.fc.weight]"
        in lines
    )
    assert "<runtime>: FZ301 frozen buffer changed [model.bn.running_mean]" in lines


def test_summary_line() -> None:
    assert output.summary_line(LintReport()) == "All checks passed."
    one = LintReport(diagnostics=[Diagnostic("FZ201", "m", "a.py", severity=Severity.ERROR)])
    assert output.summary_line(one) == "Found 1 problem (1 error, 0 warnings)."
    assert output.summary_line(fixed_report()) == "Found 6 problems (3 errors, 3 warnings)."


def test_quiet_prints_findings_only() -> None:
    assert output.render(LintReport(), "text", RULES, quiet=True) == ""
    text = output.render(fixed_report(), "text", RULES, quiet=True)
    assert "Found" not in text and text.count("\n") == 6


def test_json_fields() -> None:
    data = json.loads(output.render(fixed_report(), "json", RULES))
    assert set(data[0]) == {
        "code", "name", "severity", "message", "path", "line", "column",
        "end_line", "end_column", "object", "url", "extra",
    }  # fmt: skip
    fz204 = next(d for d in data if d["code"] == "FZ204")
    assert (fz204["end_line"], fz204["end_column"], fz204["extra"]) == (10, 36, {"group": 0})
    assert fz204["url"].endswith("docs/lint.md#fz204-frozen-param-in-optimizer")
    runtime = [d for d in data if d["line"] is None]
    assert [d["object"] for d in runtime] == ["model.fc.weight", "model.bn.running_mean"]


def test_github_escapes() -> None:
    lines = output.render_github(fixed_report())
    assert (
        lines[0] == "::error file=a.py,line=3,col=5,title=FZ201::optimizer created before freezing"
    )
    assert (
        "::warning file=rules/freeze.frz,line=2,col=1,title=FZ999::50%25 of params: a, b%0Asecond line"
        in lines
    )
    # a runtime finding without a file is placed on the script that ran
    assert (
        "::error file=train.py,title=FZ301::frozen buffer changed [model.bn.running_mean]" in lines
    )


# Key structure of SARIF 2.1.0 that code-scanning services rely on (a subset of the schema).
SARIF_SUBSET: dict[str, Any] = {
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "informationUri", "rules"],
                                "properties": {
                                    "name": {"const": "freezedsl"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription"],
                                            "properties": {
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "help": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {"$ref": "#/$defs/level"}
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "level", "message", "locations"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {
                                                            "uri": {
                                                                "type": "string",
                                                                "pattern": "^[^\\\\]*$",
                                                            }
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine"],
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                            "startColumn": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                        },
                                                    },
                                                },
                                            },
                                            "logicalLocations": {"type": "array"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "message": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}},
        },
        "level": {"enum": ["none", "note", "warning", "error"]},
    },
}


def test_sarif_structure() -> None:
    doc = json.loads(output.render(fixed_report(), "sarif", RULES))
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert doc["version"] == "2.1.0" and doc["$schema"].endswith("sarif-2.1.0.json")
    assert [r["id"] for r in driver["rules"]] == ["FZ101", "FZ201", "FZ204", "FZ301", "FZ999"]
    fz204 = driver["rules"][2]
    assert fz204["name"] == "frozen-param-in-optimizer"
    assert fz204["defaultConfiguration"] == {"level": "warning"}
    assert "## Use instead" in fz204["help"]["text"]
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    located = run["results"][0]["locations"][0]["physicalLocation"]
    assert located["artifactLocation"] == {"uri": "a.py", "uriBaseId": "%SRCROOT%"}
    assert located["region"] == {"startLine": 3, "startColumn": 5}
    runtime = [r for r in run["results"] if "region" not in r["locations"][0]["physicalLocation"]]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in runtime] == [
        "train.py"
    ] * 2
    assert runtime[0]["locations"][0]["logicalLocations"] == [
        {"fullyQualifiedName": "model.fc.weight", "kind": "member"}
    ]


def test_sarif_against_schema_subset() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(output.render(fixed_report(), "sarif", RULES)), SARIF_SUBSET)
    jsonschema.validate(json.loads(output.render(LintReport(), "sarif", RULES)), SARIF_SUBSET)


def test_sarif_uris_are_relative_with_forward_slashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "src" / "my model.py"
    report = LintReport(
        diagnostics=[
            Diagnostic("FZ204", "m", str(inside), line=1, col=1),
            Diagnostic("FZ204", "m", os.path.join("pkg", "b.py"), line=1, col=1),
        ]
    )
    doc = json.loads(output.render_sarif(report, RULES))
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
    ]
    assert sorted(uris) == ["pkg/b.py", "src/my%20model.py"]


def test_rule_anchor_matches_docs_heading() -> None:
    assert output.rule_anchor(RULES["FZ204"]) == "fz204-frozen-param-in-optimizer"
