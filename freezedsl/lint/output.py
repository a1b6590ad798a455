"""Renderers for lint findings: text, grouped, json, sarif, github.

Every renderer is a pure function of a :class:`~freezedsl.lint.report.LintReport` and
the rule table, so output is deterministic (golden-tested) and the same in the CLI and
the library. Paths are printed as the runner produced them; SARIF gets relative,
forward-slash URIs because code-scanning services resolve them against the repository.
This module must not import torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from freezedsl.lint.registry import Diagnostic, Rule, Severity
from freezedsl.lint.report import LintReport
from freezedsl.safetext import printable, source_with_caret

__all__ = [
    "DOCS_URL",
    "FORMATS",
    "SARIF_SCHEMA",
    "TOOL_URL",
    "render",
    "render_github",
    "render_grouped",
    "render_json",
    "render_sarif",
    "render_statistics",
    "render_text",
    "rule_anchor",
    "rule_url",
    "summary_line",
]

FORMATS = ("text", "grouped", "json", "sarif", "github")

#: Where the project and the rule reference live (rule URLs are ``DOCS_URL#anchor``).
TOOL_URL = "https://github.com/freezedsl/freezedsl"
DOCS_URL = f"{TOOL_URL}/blob/main/docs/lint.md"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

RUNTIME_PATH = "<runtime>"


def rule_anchor(rule: Rule) -> str:
    """The GitHub-style anchor of the rule's heading ``### CODE name`` in docs/lint.md."""
    return f"{rule.code}-{rule.name}".lower()


def rule_url(code: str, rules: Mapping[str, Rule]) -> str | None:
    rule = rules.get(code)
    return f"{DOCS_URL}#{rule_anchor(rule)}" if rule else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(report: LintReport) -> str:
    """``Found N problems (E errors, W warnings).`` or ``All checks passed.``"""
    n = len(report.diagnostics)
    if not n:
        return "All checks passed."
    return (
        f"Found {_plural(n, 'problem')} "
        f"({_plural(report.error_count, 'error')}, {_plural(report.warning_count, 'warning')})."
    )


def _where(d: Diagnostic) -> str:
    return printable(d.location()) if d.path else RUNTIME_PATH


def _message(d: Diagnostic, *, one_line: bool = False) -> str:
    """The message, naming the object when there is no line to point at."""
    text = " ".join(d.message.splitlines()) if one_line else d.message
    if d.line is None and d.obj:
        return printable(f"{text} [{d.obj}]")
    return printable(text) if one_line else "\n".join(map(printable, text.split("\n")))


def _source_excerpt(d: Diagnostic, sources: Mapping[str, str]) -> list[str]:
    text = sources.get(d.path)
    if text is None or d.line is None:
        return []
    lines = text.splitlines()
    if not 1 <= d.line <= len(lines):
        return []
    shown, col = source_with_caret(lines[d.line - 1], d.col or 1)
    return [f"  {shown}", f"  {' ' * (col - 1)}^"]


def render_text(report: LintReport, *, show_source: bool = False) -> list[str]:
    """``path:line:col: CODE message``; without a line ``path: CODE message [object]``."""
    out: list[str] = []
    for d in report.diagnostics:
        out.append(f"{_where(d)}: {d.code} {_message(d, one_line=True)}")
        if show_source:
            out.extend(_source_excerpt(d, report.sources))
    return out


def render_grouped(report: LintReport, *, show_source: bool = False) -> list[str]:
    """One header per file, then ``  line:col CODE message`` (ruff's ``grouped``)."""
    out: list[str] = []
    current: str | None = None
    for d in report.diagnostics:
        path = d.path or RUNTIME_PATH
        if path != current:
            if current is not None:
                out.append("")
            out.append(f"{path}:")
            current = path
        where = f"{d.line}:{d.col or 1}" if d.line is not None else "-"
        out.append(f"  {where} {d.code} {_message(d, one_line=True)}")
        if show_source:
            out.extend("  " + line for line in _source_excerpt(d, report.sources))
    return out


def render_statistics(report: LintReport, rules: Mapping[str, Rule]) -> list[str]:
    """``count  CODE  [severity] name`` per code, most frequent first."""
    out = []
    for code, count in report.statistics():
        rule = rules.get(code)
        tag = f"[{rule.severity.value}] {rule.name}" if rule else ""
        out.append(f"{count:>5}  {code:<7}{tag}".rstrip())
    return out


def _end(d: Diagnostic, key: str) -> int | None:
    value = d.extra.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_item(d: Diagnostic, rules: Mapping[str, Rule]) -> dict[str, Any]:
    rule = rules.get(d.code)
    extra = {k: v for k, v in d.extra.items() if k not in ("end_line", "end_col")}
    return {
        "code": d.code,
        "name": rule.name if rule else None,
        "severity": d.severity.value,
        "message": d.message,
        "path": d.path or None,
        "line": d.line,
        "column": d.col if d.line is None else (d.col or 1),
        "end_line": _end(d, "end_line"),
        "end_column": _end(d, "end_col"),
        "object": d.obj,
        "url": rule_url(d.code, rules),
        "extra": extra,
    }


def render_json(report: LintReport, rules: Mapping[str, Rule], *, statistics: bool = False) -> str:
    """A JSON list of findings (or of ``{code, name, count}`` with ``statistics``)."""
    data: list[dict[str, Any]]
    if statistics:
        data = [
            {"code": code, "name": rules[code].name if code in rules else None, "count": n}
            for code, n in report.statistics()
        ]
    else:
        data = [_json_item(d, rules) for d in report.diagnostics]
    return json.dumps(data, indent=2, default=str)


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _uri(path: str) -> tuple[str, bool]:
    """``(uri, relative?)``: relative forward-slash URI when under the current directory."""
    p = Path(path)
    if p.is_absolute():
        try:
            rel = p.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return p.resolve().as_uri(), False
        return quote(rel.as_posix()), True
    return quote(Path(os.path.normpath(path)).as_posix()), True


def _sarif_rule(code: str, rules: Mapping[str, Rule]) -> dict[str, Any]:
    rule = rules.get(code)
    if rule is None:
        return {"id": code, "shortDescription": {"text": code}}
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.what.strip()},
        "help": {"text": rule.doc(), "markdown": rule.doc()},
        "helpUri": rule_url(code, rules),
        "defaultConfiguration": {"level": _level(rule.severity)},
    }


def _sarif_location(d: Diagnostic, fallback: str | None) -> dict[str, Any] | None:
    path = d.path or fallback
    loc: dict[str, Any] = {}
    if path:
        uri, relative = _uri(path)
        artifact: dict[str, Any] = {"uri": uri}
        if relative:
            artifact["uriBaseId"] = "%SRCROOT%"
        physical: dict[str, Any] = {"artifactLocation": artifact}
        if d.line is not None:
            region: dict[str, Any] = {"startLine": d.line, "startColumn": d.col or 1}
            end_line, end_col = _end(d, "end_line"), _end(d, "end_col")
            if end_line is not None:
                region["endLine"] = end_line
            if end_col is not None:
                region["endColumn"] = end_col
            physical["region"] = region
        loc["physicalLocation"] = physical
    if d.obj:
        loc["logicalLocations"] = [{"fullyQualifiedName": d.obj, "kind": "member"}]
    return loc or None


def render_sarif(
    report: LintReport, rules: Mapping[str, Rule], *, tool_version: str | None = None
) -> str:
    """SARIF 2.1.0; runtime findings without a file are placed on the script that ran."""
    codes = sorted({d.code for d in report.diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    fallback = report.run.script if report.run else None
    results = []
    for d in report.diagnostics:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _level(d.severity),
            "message": {"text": _message(d)},
        }
        loc = _sarif_location(d, fallback)
        if loc is not None:
            result["locations"] = [loc]
        results.append(result)
    driver: dict[str, Any] = {"name": "freezedsl", "informationUri": TOOL_URL}
    if tool_version:
        driver["version"] = tool_version
    driver["rules"] = [_sarif_rule(code, rules) for code in codes]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
    return json.dumps(doc, indent=2)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(report: LintReport) -> list[str]:
    """GitHub Actions workflow commands: ``::error file=P,line=L,col=C,title=CODE::msg``."""
    fallback = report.run.script if report.run else None
    out = []
    for d in report.diagnostics:
        props = []
        path = d.path or fallback
        if path:
            props.append(f"file={_gh_escape(path, prop=True)}")
        if d.line is not None:
            props.append(f"line={d.line}")
            props.append(f"col={d.col or 1}")
        props.append(f"title={_gh_escape(d.code, prop=True)}")
        out.append(f"::{_level(d.severity)} {','.join(props)}::{_gh_escape(_message(d))}")
    return out


def render(
    report: LintReport,
    fmt: str,
    rules: Mapping[str, Rule],
    *,
    show_source: bool = False,
    statistics: bool = False,
    quiet: bool = False,
    tool_version: str | None = None,
) -> str:
    """Everything that goes to standard output for ``fmt``, newline-terminated."""
    lines: Sequence[str]
    if fmt == "json":
        return render_json(report, rules, statistics=statistics) + "\n"
    if fmt == "sarif":
        return render_sarif(report, rules, tool_version=tool_version) + "\n"
    if fmt == "github":
        lines = render_github(report)
    elif fmt in ("text", "grouped"):
        if statistics:
            lines = render_statistics(report, rules)
        elif fmt == "text":
            lines = render_text(report, show_source=show_source)
        else:
            lines = render_grouped(report, show_source=show_source)
        if not quiet:
            lines = [*lines, *([""] if fmt == "grouped" and lines else []), summary_line(report)]
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return "".join(line + "\n" for line in lines)
