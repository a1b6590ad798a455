"""The parser: Lark's LALR(1) parse of grammar/freeze.lark, the AST built from its tree,
and the grammar cache that keeps start-up fast.

Moved here from the test of the former hand-written LALR copy (what it pinned about the
language, not about the copy): the shipped rule files and every statement form parse;
thousands of seeded mutations of them either parse or raise a located RuleSyntaxError
(Lark's exceptions never escape); a syntax error anywhere in the text is reported
before a semantic one, and of two semantic errors the first one is.
"""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freezedsl.errors import RuleSyntaxError
from freezedsl.syntax import ast, grammar_cache
from freezedsl.syntax.parser import parse

REPO = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((REPO / "rules").glob("*.frz")) + [REPO / "benchmarks" / "moe.frz"]

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


def _outcome(text: str) -> str:
    """'ok', or 'error' for a RuleSyntaxError that points into the text."""
    try:
        parse(text)
    except RuleSyntaxError as exc:
        assert exc.line is not None and exc.col is not None, (text, str(exc))
        assert 1 <= exc.line <= text.count("\n") + text.count("\r") + 1, (text, str(exc))
        assert exc.col >= 1, (text, str(exc))
        return "error"
    return "ok"


# ------------------------------------------------------------------ the language parses


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_files_parse(path: Path) -> None:
    program = parse(path.read_text("utf-8"), path=str(path))
    assert program.statements


def test_every_form_parses() -> None:
    program = parse(EVERY_FORM)
    assert len(program.statements) == 14
    assert parse("").statements == () and parse("\n\n# only a comment").statements == ()


def test_statement_spans_run_from_the_keyword_to_the_last_character() -> None:
    """Spans include the keywords and brackets the grammar drops from the tree."""
    program = parse("freeze fc\n  at epoch 3: unfreeze layer4[-1]\nexpect frozen (a, b)?\n")
    spans = [(s.span.line, s.span.col, s.span.end_line, s.span.end_col) for s in program.statements if s.span]
    assert spans == [(1, 1, 1, 10), (2, 3, 2, 34), (3, 1, 3, 22)]
    maybe = program.statements[2]
    assert isinstance(maybe, ast.ExpectSelector) and isinstance(maybe.selector, ast.Maybe)
    assert maybe.selector.span is not None and (maybe.selector.span.col, maybe.selector.span.end_col) == (15, 22)


def test_mutations_parse_or_raise_a_located_error() -> None:
    kinds = Counter(_outcome(text) for text in _mutations(1500, seed=20261125))
    assert kinds["ok"] > 150 and kinds["error"] > 300, kinds


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=24))
def test_random_pieces_parse_or_raise_a_located_error(pieces: list[str]) -> None:
    _outcome(" ".join(pieces))


def test_a_syntax_error_is_reported_before_an_earlier_semantic_one() -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse('freeze name~"(a+)+" ; freeze fc)')
    assert (raised.value.line, raised.value.col) == (1, 32)
    assert "found ')'" in str(raised.value)


def test_of_two_semantic_errors_the_first_is_reported() -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse('freeze name~"(a+)+"\nfreeze fc[0:1:0]')
    assert raised.value.line == 1 and "nests repetition" in str(raised.value)
    with pytest.raises(RuleSyntaxError) as raised:
        parse('freeze fc[0:1:0]\nfreeze name~"(a+)+"')
    assert raised.value.line == 1 and "step cannot be zero" in str(raised.value)


def test_a_long_selector_is_refused_by_depth_not_by_recursion() -> None:
    with pytest.raises(RuleSyntaxError) as raised:
        parse("freeze all" + " except fc" * 5000)
    assert "levels deep" in str(raised.value)


# ------------------------------------------------------------------ the grammar cache


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache"
    home.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)  # pytest's tmp dirs may be group-writable; the check walks up
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv(grammar_cache.NO_CACHE_ENV, raising=False)
    return home


pytestmark_posix = pytest.mark.skipif(not hasattr(os, "getuid"), reason="the cache needs POSIX owners")


def _parse_in_subprocess(env_home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(grammar_cache.NO_CACHE_ENV, None)
    env.update(XDG_CACHE_HOME=str(env_home), **extra)
    code = "from freezedsl.syntax.parser import parse\nprint(len(parse('freeze fc; unfreeze x').statements))\n"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)


@pytestmark_posix
def test_the_cache_lives_in_a_private_directory_and_is_reused(cache_home: Path) -> None:
    first = _parse_in_subprocess(cache_home)
    assert (first.returncode, first.stdout, first.stderr) == (0, "2\n", "")
    directory = cache_home / "freezedsl"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (cached,) = directory.iterdir()
    assert cached.name.startswith("grammar-") and cached.stat().st_size > 0
    written = cached.stat().st_mtime_ns
    again = _parse_in_subprocess(cache_home)
    assert (again.returncode, again.stdout) == (0, "2\n")
    assert cached.stat().st_mtime_ns == written  # read, not rewritten


@pytestmark_posix
def test_a_damaged_cache_file_is_rebuilt(cache_home: Path) -> None:
    assert _parse_in_subprocess(cache_home).returncode == 0
    (cached,) = (cache_home / "freezedsl").iterdir()
    cached.write_bytes(b"not a cache\n\x80garbage")
    done = _parse_in_subprocess(cache_home)
    assert (done.returncode, done.stdout, done.stderr) == (0, "2\n", "")
    assert cached.read_bytes() != b"not a cache\n\x80garbage"


@pytestmark_posix
def test_no_cache_when_switched_off(cache_home: Path) -> None:
    done = _parse_in_subprocess(cache_home, **{grammar_cache.NO_CACHE_ENV: "1"})
    assert (done.returncode, done.stdout) == (0, "2\n")
    assert not (cache_home / "freezedsl").exists()


@pytestmark_posix
@pytest.mark.parametrize("mode", [0o770, 0o702, 0o777, 0o750, 0o701])
def test_no_cache_in_a_directory_others_can_enter(cache_home: Path, mode: int) -> None:
    directory = cache_home / "freezedsl"
    directory.mkdir()
    os.chmod(directory, mode)
    assert grammar_cache.cache_file("grammar", "1.0") is None


@pytestmark_posix
def test_no_cache_under_a_directory_others_can_write(cache_home: Path) -> None:
    os.chmod(cache_home, 0o777)  # anyone could swap freezedsl/ for their own
    assert grammar_cache.cache_file("grammar", "1.0") is None
    os.chmod(cache_home, 0o777 | stat.S_ISVTX)  # sticky, as /tmp: they cannot
    assert grammar_cache.cache_file("grammar", "1.0") is not None


@pytestmark_posix
def test_no_cache_in_a_directory_or_file_of_another_user(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = grammar_cache.cache_file("grammar", "1.0")
    assert path is not None and Path(path).parent == (cache_home / "freezedsl").resolve()
    Path(path).write_bytes(b"cache")
    os.chmod(path, 0o664)  # a umask of 002: harmless, no one else may enter the directory
    assert grammar_cache.cache_file("grammar", "1.0") == path
    Path(path).unlink()
    Path(path).symlink_to("/dev/null")
    assert grammar_cache.cache_file("grammar", "1.0") is None  # not a regular file
    Path(path).unlink()
    Path(path).write_bytes(b"cache")
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)  # as seen by another user
    assert grammar_cache.cache_file("grammar", "1.0") is None


@pytestmark_posix
def test_no_cache_through_a_link_to_a_directory_others_can_write(tmp_path: Path, cache_home: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    (shared / "freezedsl").mkdir(mode=0o700)
    (cache_home / "freezedsl").symlink_to(shared / "freezedsl")
    assert grammar_cache.cache_file("grammar", "1.0") is None


def test_the_cache_file_names_the_grammar_and_versions(cache_home: Path) -> None:
    if not hasattr(os, "getuid"):
        assert grammar_cache.cache_file("grammar", "1.0") is None
        return
    a, b = grammar_cache.cache_file("grammar a", "1.0"), grammar_cache.cache_file("grammar b", "1.0")
    c = grammar_cache.cache_file("grammar a", "1.1")
    assert a and b and c and len({a, b, c}) == 3
    assert f"py{sys.version_info[0]}.{sys.version_info[1]}" in a
