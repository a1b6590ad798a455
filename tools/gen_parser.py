"""Generate freezedsl/syntax/_lalr_tables.py from grammar/freeze.lark.

    python tools/gen_parser.py           # (re)write the tables
    python tools/gen_parser.py --check   # exit 1 if the committed tables are stale

The grammar stays the single source of truth: this script builds it with Lark (the same
options the language has always been parsed with: LALR(1), contextual lexer, positions,
``[x]`` placeholders) and writes out what Lark computed -- the parse table, the shape of
the tree each rule builds, and each parser state's lexer -- as plain Python literals.
``freezedsl.syntax._lalr`` runs them without importing Lark, so that ``freezedsl check``
and ``fmt`` start quickly. tests/core/test_parser_tables.py checks that the committed
file is what this script produces and that the result parses exactly like Lark.

State, rule and lexer numbers are canonical (breadth-first from the start state,
symbols in sorted order), so the output does not depend on hash randomization.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "grammar" / "freeze.lark"
OUT = ROOT / "freezedsl" / "syntax" / "_lalr_tables.py"

#: The options the rule language is parsed with (what freezedsl.syntax._lalr implements).
LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "lexer": "contextual",
    "propagate_positions": True,
    "maybe_placeholders": True,
}


def build_lark(grammar: str | None = None) -> Any:
    """The reference parser: Lark itself, built from the grammar with LARK_OPTIONS."""
    from lark import Lark

    return Lark(GRAMMAR.read_text("utf-8") if grammar is None else grammar, **LARK_OPTIONS)


def _rule_shape(rule: Any, chain: list[Any]) -> tuple[Any, ...]:
    """(origin, length, tree name, expand single child, children to keep, Nones to append)."""
    from lark.parse_tree_builder import (
        ChildFilterLALR,
        ChildFilterLALR_NoPlaceholders,
        ExpandSingleChild,
        PropagatePositions,
    )

    expand1 = False
    include: tuple[tuple[int, bool, int], ...] | None = None
    append_none = 0
    positions = False
    for wrapper in chain:
        if wrapper is ExpandSingleChild:
            expand1 = True
        elif wrapper is PropagatePositions:
            positions = True
        elif getattr(wrapper, "func", None) is ChildFilterLALR:
            to_include, append_none = wrapper.args
            include = tuple((int(i), bool(x), int(n)) for i, x, n in to_include)
        elif getattr(wrapper, "func", None) is ChildFilterLALR_NoPlaceholders:
            (to_include,) = wrapper.args
            include = tuple((int(i), bool(x), 0) for i, x in to_include)
        else:  # pragma: no cover - a Lark option the runtime does not implement
            raise SystemExit(f"unsupported tree-builder step for {rule}: {wrapper!r}")
    if not positions:  # pragma: no cover
        raise SystemExit("the runtime always propagates positions; Lark did not")
    name = rule.alias or rule.options.template_source or rule.origin.name
    return (str(rule.origin.name), len(rule.expansion), str(name), expand1, include, int(append_none))


def _lexer_shape(lexer: Any) -> tuple[Any, ...]:
    """(patterns, keyword retyping, allowed terminals) of one Lark BasicLexer."""
    from lark.lexer import PatternStr, UnlessCallback

    scanner = lexer.scanner  # built on first use; builds the "unless" callbacks too
    patterns = []
    for mre in scanner._mres:
        if mre.flags != 32:  # re.UNICODE only: no global flags
            raise SystemExit(f"unsupported regex flags {mre.flags}")
        patterns.append(mre.pattern)
    unless: dict[str, dict[str, str]] = {}
    for name, callback in sorted(lexer.callback.items()):
        if not isinstance(callback, UnlessCallback):  # pragma: no cover - no lexer callbacks
            raise SystemExit(f"unsupported lexer callback on {name}: {callback!r}")
        words: dict[str, str] = {}
        for term in callback.scanner.terminals:
            # a literal without flags fullmatches exactly its own text: a dict lookup
            if not isinstance(term.pattern, PatternStr) or term.pattern.flags:
                raise SystemExit(f"unsupported keyword terminal {term.name}: {term.pattern!r}")
            words[str(term.pattern.value)] = str(term.name)
        unless[str(name)] = dict(sorted(words.items()))
    allowed = set(scanner.allowed_types) - set(lexer.ignore_types) or {"<END-OF-FILE>"}
    return (tuple(patterns), unless, tuple(sorted(allowed)))


def tables(grammar: str | None = None) -> dict[str, Any]:
    """Everything the runtime needs, canonically numbered."""
    from lark.parsers.lalr_analysis import Shift

    lk = build_lark(grammar)
    frontend = lk.parser
    conf = lk.lexer_conf
    if conf.callbacks or conf.postlex is not None or conf.use_bytes or conf.g_regex_flags:
        raise SystemExit("unsupported lexer configuration")
    table = frontend.parser._parse_table
    (start_name,) = frontend.parser_conf.start
    start, end = table.start_states[start_name], table.end_states[start_name]

    # states: breadth-first from the start state, symbols in sorted order
    order: dict[int, int] = {start: 0}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for _sym, (action, arg) in sorted(table.states[state].items()):
            if action is Shift and arg not in order:
                order[arg] = len(order)
                queue.append(arg)
    if end not in order:
        order[end] = len(order)
    missing = set(table.states) - set(order)
    if missing:  # pragma: no cover
        raise SystemExit(f"unreachable parser states: {sorted(missing)}")

    shapes = {rule: _rule_shape(rule, chain) for rule, chain in lk._parse_tree_builder.rule_builders}
    rule_key = {rule: (str(rule.origin.name), tuple(str(s.name) for s in rule.expansion)) for rule in shapes}
    rules = sorted(shapes, key=lambda r: rule_key[r])
    rule_no = {rule: i for i, rule in enumerate(rules)}

    states: list[dict[str, int]] = [{} for _ in order]
    for state, actions in table.states.items():
        row: dict[str, int] = {}
        for sym, (action, arg) in sorted(actions.items()):
            row[str(sym)] = order[arg] if action is Shift else ~rule_no[arg]
        states[order[state]] = row

    lexer_of_state: list[int] = [0] * len(order)
    lexers: list[tuple[Any, ...]] = []
    seen: dict[Any, int] = {}

    def lexer_no(lexer: Any) -> int:
        shape = _lexer_shape(lexer)
        key = repr(shape)
        if key not in seen:
            seen[key] = len(lexers)
            lexers.append(shape)
        return seen[key]

    by_new = sorted(order, key=order.__getitem__)
    for state in by_new:
        lexer_of_state[order[state]] = lexer_no(frontend.lexer.lexers[state])
    root = lexer_no(frontend.lexer.root_lexer)

    newline: set[str] = set()
    ignore: set[str] = set()
    for lexer in [*frontend.lexer.lexers.values(), frontend.lexer.root_lexer]:
        newline |= set(lexer.newline_types)
        ignore |= set(lexer.ignore_types)
    return {
        "START": 0,
        "END": order[end],
        "IGNORE": tuple(sorted(ignore)),
        "NEWLINE_TYPES": tuple(sorted(newline)),
        "RULES": tuple(shapes[r] for r in rules),
        "STATES": tuple(states),
        "LEXERS": tuple(lexers),
        "STATE_LEXER": tuple(lexer_of_state),
        "ROOT_LEXER": root,
    }


HEADER = '''\
"""LALR(1) tables of the rule language: GENERATED by tools/gen_parser.py, do not edit.

Source: grammar/freeze.lark, sha256 {sha}.
After changing the grammar run ``python tools/gen_parser.py``;
tests/core/test_parser_tables.py fails while this file is stale.
freezedsl.syntax._lalr explains each table.
"""

from __future__ import annotations

'''


def render(grammar: str | None = None) -> str:
    text = GRAMMAR.read_text("utf-8") if grammar is None else grammar
    data = tables(text)
    out = [HEADER.format(sha=hashlib.sha256(text.encode("utf-8")).hexdigest())]
    types = {
        "START": "int",
        "END": "int",
        "IGNORE": "tuple[str, ...]",
        "NEWLINE_TYPES": "tuple[str, ...]",
        "RULES": "tuple[tuple[str, int, str, bool, tuple[tuple[int, bool, int], ...] | None, int], ...]",
        "STATES": "tuple[dict[str, int], ...]",
        "LEXERS": "tuple[tuple[tuple[str, ...], dict[str, dict[str, str]], tuple[str, ...]], ...]",
        "STATE_LEXER": "tuple[int, ...]",
        "ROOT_LEXER": "int",
    }
    for name, value in data.items():
        if isinstance(value, tuple) and name in ("RULES", "STATES", "LEXERS"):
            out.append(f"{name}: {types[name]} = (\n")
            for i, item in enumerate(value):
                out.append(f"    {item!r},  # {i}\n")
            out.append(")\n")
        else:
            out.append(f"{name}: {types[name]} = {value!r}\n")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 if the tables are stale")
    args = ap.parse_args(argv)
    text = render()
    current = OUT.read_text("utf-8") if OUT.exists() else None
    if args.check:
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run python tools/gen_parser.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUT.write_text(text, "utf-8")
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
