"""The generated parse tables and the Lark-free runtime that runs them.

grammar/freeze.lark is the single source of truth for the syntax. ``tools/gen_parser.py``
builds it with Lark and writes what Lark computed to freezedsl/syntax/_lalr_tables.py;
freezedsl.syntax._lalr runs those tables without importing Lark. Pinned here:

* the committed tables are exactly what the script generates from the grammar now
  (whatever the hash seed), so an edit of the grammar cannot go unnoticed;
* the runtime parses as Lark does: the same tree (rule names, children, token types,
  values and positions, node positions) for text that parses, and the same error
  (exception kind, token or position, expected terminals) for text that does not -- on
  the shipped rule files and on thousands of seeded mutations of them. The parser's
  messages are computed from exactly these values, so they cannot drift either.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freezedsl.errors import RuleSyntaxError
from freezedsl.syntax import _lalr
from freezedsl.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "rules").glob("*.frz")) + [REPO / "benchmarks" / "moe.frz"]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_parser", REPO / "tools" / "gen_parser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_tool()


@pytest.fixture(scope="module")
def lark_parser() -> Any:
    return GEN.build_lark()


@pytest.fixture(scope="module")
def runtime() -> _lalr.Parser:
    return _lalr.Parser()


# ------------------------------------------------------------------ the tables are current


def test_committed_tables_are_generated_from_the_grammar() -> None:
    assert GEN.OUT == REPO / "freezedsl" / "syntax" / "_lalr_tables.py"
    assert GEN.GRAMMAR == REPO / "grammar" / "freeze.lark"
    assert GEN.render() == GEN.OUT.read_text("utf-8"), (
        "freezedsl/syntax/_lalr_tables.py is stale: run `python tools/gen_parser.py`"
    )


@pytest.mark.parametrize("seed", ["0", "12345"])
def test_generation_does_not_depend_on_the_hash_seed(seed: str) -> None:
    env = dict(os.environ, PYTHONHASHSEED=seed)
    done = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gen_parser.py"), "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_options_are_the_ones_the_runtime_implements() -> None:
    assert GEN.LARK_OPTIONS == {
        "parser": "lalr",
        "lexer": "contextual",
        "propagate_positions": True,
        "maybe_placeholders": True,
    }


def test_parsing_does_not_import_lark() -> None:
    code = (
        "import sys\n"
        "from freezedsl.syntax.parser import parse\n"
        "from freezedsl.syntax.printer import format_program\n"
        "format_program(parse('freeze children[0:6]; expect trainable 1%..10%\\nlr 0.1x fc'))\n"
        "try:\n"
        "    parse('freeze (')\n"
        "except Exception as exc:\n"
        "    assert type(exc).__name__ == 'RuleSyntaxError'\n"
        "assert not [m for m in sys.modules if m == 'lark' or m.startswith('lark.')]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# ------------------------------------------------------------------ same results as Lark

_META = (
    "empty",
    "line",
    "column",
    "start_pos",
    "end_line",
    "end_column",
    "end_pos",
    "container_line",
    "container_column",
    "container_start_pos",
    "container_end_line",
    "container_end_column",
    "container_end_pos",
)
_TOKEN = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")


def _tree(node: Any) -> Any:
    """A comparable picture of a Lark tree or a runtime tree."""
    if node is None:
        return None
    if hasattr(node, "children"):
        meta = tuple(getattr(node.meta, a, "<unset>") for a in _META)
        return ("tree", str(node.data), meta, tuple(_tree(c) for c in node.children))
    assert isinstance(node, str), type(node)
    return ("token", type(node).__name__, *(getattr(node, a) for a in _TOKEN))


def _outcome(parser: Any, text: str) -> tuple[Any, ...]:
    try:
        tree = parser.parse(text)
    except Exception as exc:  # noqa: BLE001 - the exception is the result
        kind = type(exc).__name__
        if kind == "UnexpectedToken":
            token = _tree(exc.token)  # type: ignore[attr-defined]
            return (kind, token, sorted(exc.expected), exc.line, exc.column, exc.pos_in_stream)  # type: ignore[attr-defined]
        if kind == "UnexpectedCharacters":
            return (kind, exc.pos_in_stream, exc.line, exc.column, sorted(exc.allowed), exc.char)  # type: ignore[attr-defined]
        return (kind, str(exc))
    return ("ok", _tree(tree))


def _same(lark_parser: Any, runtime: _lalr.Parser, text: str) -> str:
    expected, got = _outcome(lark_parser, text), _outcome(runtime, text)
    # token pictures name their class (Lark's Token vs ours): compare the rest
    assert _strip_classes(got) == _strip_classes(expected), f"text {text!r}:\n lark:    {expected}\n runtime: {got}"
    return str(expected[0])


def _strip_classes(value: Any) -> Any:
    if isinstance(value, tuple):
        if len(value) > 1 and value[0] == "token":
            return ("token", *(_strip_classes(v) for v in value[2:]))
        return tuple(_strip_classes(v) for v in value)
    if isinstance(value, list):
        return [_strip_classes(v) for v in value]
    return value


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_files_parse_as_with_lark(lark_parser: Any, runtime: _lalr.Parser, path: Path) -> None:
    assert _same(lark_parser, runtime, path.read_text("utf-8")) == "ok"


EVERY_FORM = """\
# every statement form
freeze children[0:6], layer1.0.conv1 except `all`.bn?; unfreeze fc  # trailing
freeze stats type=BatchNorm2d
unfreeze stats layer*.**.bn1
convert all except (fc, name~"^head\\\\.") to torchvision.ops.FrozenBatchNorm2d
lr 0.1x encoder.layer[-2:]
weight_decay 0 **.bias
lr decay 0.75 over encoder.layer[:]
expect frozen type~"Norm$", features[::2]
expect trainable 1%..10%
expect frozen <= 5.5%

at epoch 3: unfreeze layer4[-1].conv1
at epoch 5: expect trainable 50%
freeze (a,
  b) except
  c
"""

PIECES = [
    "freeze", "unfreeze", " ", "\n", ";", "expect", "trainable", "frozen", "all", "children",
    "[", "]", ":", "0", "-1", "+2", "(", ")", ",", "except", "?", "name~", "type=", "type~",
    '"x"', '"a\\"b"', '"unterminated', "`q`", "`", "fc", "layer*", "**", "*", ".", "%", "50%",
    "..", "<=", ">", "==", "at", "epoch", "step", "3", "lr", "0.1x", "decay", "over",
    "weight_decay", "convert", "to", "FrozenBatchNorm2d", "stats", "#c\n", "\r\n", "\t", "=",
    "~", "x.y", "1e-3", "$", "\u00e9", "\x0c", "\x00", "\r",
]  # fmt: skip


def _mutations(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    corpus = [p.read_text("utf-8") for p in RULE_FILES] + [EVERY_FORM]
    out = []
    for _ in range(count):
        if rng.random() < 0.6:
            text = rng.choice(corpus)
            for _ in range(rng.randint(1, 4)):
                k = rng.randrange(len(text) + 1)
                op = rng.random()
                if op < 0.33:
                    text = text[:k] + text[k + rng.randint(1, 5) :]
                elif op < 0.66:
                    text = text[:k] + rng.choice(PIECES) + text[k:]
                else:
                    text = text[:k] + rng.choice(PIECES) + text[k + rng.randint(1, 5) :]
        else:
            words = [rng.choice(PIECES) + (" " if rng.random() < 0.5 else "") for _ in range(rng.randint(0, 12))]
            text = "".join(words)
        out.append(text)
    return out


def test_every_form_parses_as_with_lark(lark_parser: Any, runtime: _lalr.Parser) -> None:
    assert _same(lark_parser, runtime, EVERY_FORM) == "ok"
    assert _same(lark_parser, runtime, "") == "ok"
    assert _same(lark_parser, runtime, "\n\n# only a comment") == "ok"


def test_mutations_parse_or_fail_as_with_lark(lark_parser: Any, runtime: _lalr.Parser) -> None:
    kinds = Counter(_same(lark_parser, runtime, text) for text in _mutations(4000, seed=20261125))
    # the corpus exercises all three outcomes, plentifully
    assert kinds["ok"] > 300 and kinds["UnexpectedToken"] > 300 and kinds["UnexpectedCharacters"] > 100, kinds


def test_a_large_file_parses_as_with_lark(lark_parser: Any, runtime: _lalr.Parser) -> None:
    text = "\n".join([EVERY_FORM] * 40 + [p.read_text("utf-8") for p in RULE_FILES] * 5)
    assert _same(lark_parser, runtime, text) == "ok"


# ------------------------------------------------------- building the AST while parsing
# ``parse_to`` calls the AST handlers at each reduction instead of building the tree; it
# must give what converting ``parse``'s tree bottom-up gives, spans included.


def _convert(tree: Any, handlers: dict[str, Any]) -> Any:
    if not isinstance(tree, _lalr.Tree):
        return tree
    items = [_convert(child, handlers) for child in tree.children]
    m = tree.meta
    place = None if m.empty else (m.line, m.column, m.start_pos, m.end_line, m.end_column, m.end_pos)
    return handlers[tree.data](place, items)


def _picture(value: Any) -> Any:
    """AST with spans (which equality ignores) spelled out."""
    fields = getattr(type(value), "__record_fields__", None)
    if fields is not None:
        return (type(value).__name__, *((name, _picture(getattr(value, name))) for name, _, _ in fields))
    if isinstance(value, (list, tuple)):
        return tuple(_picture(v) for v in value)
    return value


def _both_ways(runtime: _lalr.Parser, text: str) -> str:
    from freezedsl.syntax.parser import _first_bad_char, _Located, _ToAst

    try:
        tree = runtime.parse(text)
    except _lalr.UnexpectedInput:
        # a syntax error: parse() reports it even where a handler fails earlier in the text
        if _first_bad_char(text) is not None:
            return "control character"  # refused before the LALR loop runs
        with pytest.raises(RuleSyntaxError) as raised:
            parse(text)
        assert (raised.value.line, raised.value.col) == _syntax_error_position(runtime, text), repr(text)
        return "syntax"
    try:
        expected = _picture(_convert(tree, _ToAst().handlers()))
    except _Located as exc:
        with pytest.raises(_Located) as raised_located:
            runtime.parse_to(text, _ToAst().handlers())
        assert (raised_located.value.message, raised_located.value.line, raised_located.value.col) == (
            exc.message,
            exc.line,
            exc.col,
        ), text
        return "located"
    assert _picture(runtime.parse_to(text, _ToAst().handlers())) == expected, text
    return "ok"


def _syntax_error_position(runtime: _lalr.Parser, text: str) -> tuple[int, int]:
    from freezedsl.syntax.parser import _translate

    try:
        runtime.parse(text)
    except _lalr.UnexpectedInput as exc:
        err = _translate(exc, text, None)
        return err.line, err.col
    raise AssertionError("no syntax error")  # pragma: no cover


def test_ast_built_while_parsing_equals_the_converted_tree(runtime: _lalr.Parser) -> None:
    texts = [EVERY_FORM, "", "# only a comment\n"] + [p.read_text("utf-8") for p in RULE_FILES]
    texts += _mutations(1500, seed=20261203)
    texts.append('freeze name~"(a+)+" ; freeze fc)')  # a handler error before a syntax error
    texts.append('freeze name~"(a+)+"\nfreeze fc[0:1:0]')  # two handler errors: the first counts
    kinds = Counter(_both_ways(runtime, text) for text in texts)
    assert kinds["ok"] > 100 and kinds["syntax"] > 100 and kinds["located"] >= 2, kinds


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=24))
def test_ast_built_while_parsing_equals_the_converted_tree_on_random_pieces(pieces: list[str]) -> None:
    _both_ways(_lalr.Parser(), " ".join(pieces))

