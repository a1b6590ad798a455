"""The import rule between freezedsl's layers, checked on the real import graph.

Why: the layers (syntax -> planning -> application -> lint -> cli) are what keeps
``check``/``fmt`` fast, planning pure and the linter optional; a lazy import inside a
function crosses a layer as surely as a top-level one, and no Python check sees it.
The graph comes from tools/import_cycles.py (lazy imports included, ``TYPE_CHECKING``
blocks skipped). docs/architecture.md describes the same rule.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]

# (importer prefix, forbidden prefixes): a module under the first imports nothing under the others
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "freezedsl.syntax",
        (
            "freezedsl.planning",
            "freezedsl.application",
            "freezedsl.loading",
            "freezedsl.lint",
            "freezedsl.cli",
            "freezedsl.commands",
        ),
    ),
    ("freezedsl.planning", ("freezedsl.application", "freezedsl.lint", "freezedsl.cli", "freezedsl.commands")),
    ("freezedsl.application", ("freezedsl.lint", "freezedsl.cli", "freezedsl.commands")),
    ("freezedsl.lint", ("freezedsl.cli", "freezedsl.commands")),
)
# only the entry point reaches the command line
ONLY_IMPORTED_BY: dict[str, tuple[str, ...]] = {
    "freezedsl.cli": ("freezedsl.__main__",),
    # toy models for docs and tests: a public testing module the library never uses
    "freezedsl.testing": (),
}

# (importer, imported): why each crossing is allowed
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("freezedsl.syntax.to_ast", "freezedsl.planning.rx"): (
        "the AST builder refuses a regex that re and the regex engine read differently with a located "
        "error, using the matcher's own check (rx.check_dialect); rx imports only the standard "
        "library, and this lazy import runs only for files with name~/type~ patterns"
    ),
}


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_cycles", REPO / "tools" / "import_cycles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(graph: dict[str, set[str]], exceptions: dict[tuple[str, str], str]) -> list[str]:
    """Every import in ``graph`` that breaks the layer rule and is not in ``exceptions``."""
    found = []
    for importer, imported in sorted((m, d) for m, deps in graph.items() for d in deps):
        if (importer, imported) in exceptions:
            continue
        for layer, forbidden in LAYERS:
            if _under(importer, layer) and any(_under(imported, f) for f in forbidden):
                found.append(f"{importer} imports {imported} (a {layer} module must not)")
        for target, allowed in ONLY_IMPORTED_BY.items():
            if _under(imported, target) and importer not in allowed:
                who = ", ".join(allowed) or "no freezedsl module"
                found.append(f"{importer} imports {imported} (only {who} may)")
    return found


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


@pytest.fixture(scope="module")
def graph(tool: ModuleType) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = tool.import_graph()
    return graph


def test_the_graph_is_the_real_one(graph: dict[str, set[str]]) -> None:
    # a graph that missed lazy imports (or every module) would make the checks below vacuous
    assert "freezedsl.syntax.parser" in graph and "freezedsl.commands" in graph
    assert "freezedsl.planning.rx" in graph["freezedsl.syntax.to_ast"]  # a lazy import, found
    assert "freezedsl.clitools" in graph["freezedsl.commands"]


def test_no_import_cycles(tool: ModuleType, graph: dict[str, set[str]]) -> None:
    assert tool.cycles(graph) == []


def test_layer_rule(graph: dict[str, set[str]]) -> None:
    assert violations(graph, EXCEPTIONS) == []


def test_every_exception_is_still_needed(graph: dict[str, set[str]]) -> None:
    stale = [pair for pair in EXCEPTIONS if pair[1] not in graph.get(pair[0], set())]
    assert stale == [], "remove these from EXCEPTIONS: the import is gone"


# ------------------------------------------------------------------ the checkers themselves


def test_a_planted_cycle_is_found(tool: ModuleType) -> None:
    fake = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert tool.cycles(fake) == [["a", "b", "c"]]
    assert tool.cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("freezedsl.syntax.ast", "freezedsl.planning.select"),
        ("freezedsl.syntax", "freezedsl.loading"),
        ("freezedsl.planning.cost", "freezedsl.lint.cost"),
        ("freezedsl.planning.plan", "freezedsl.application"),
        ("freezedsl.application", "freezedsl.lint"),
        ("freezedsl.lint.runner", "freezedsl.commands"),
        ("freezedsl.api", "freezedsl.cli"),
    ],
)
def test_a_planted_violation_is_found(importer: str, imported: str) -> None:
    fake = {importer: {imported}, imported: set()}
    assert len(violations(fake, {})) == 1
    assert violations(fake, {(importer, imported): "planted"}) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("freezedsl.planning.plan", "freezedsl.syntax.ast"),  # downwards
        ("freezedsl.lint.cost", "freezedsl.planning.cost"),
        ("freezedsl.commands", "freezedsl.lint.cost"),
        ("freezedsl.__main__", "freezedsl.cli"),
        ("freezedsl.lint.cli", "freezedsl.clitools"),  # lint.cli is not freezedsl.cli
        ("freezedsl.syntaxes", "freezedsl.lint"),  # a prefix of a name is not its package
    ],
)
def test_allowed_imports_pass(importer: str, imported: str) -> None:
    assert violations({importer: {imported}, imported: set()}, {}) == []
