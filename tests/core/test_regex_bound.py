"""The regex bound: one time budget per rule file, in every thread, without signals.

Attacks from the adversarial review (issue 11): nested repetition hidden in atomic and
conditional groups or in counted repetition, a plan in a worker thread, a program with
its own ``setitimer``, and a file of many individually-acceptable slow regexes.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import freezedsl
from freezedsl.errors import RuleSyntaxError, SelectionError
from freezedsl.lint.rulefiles import check_source
from freezedsl.planning import rx
from freezedsl.syntax.parser import parse

#: ``(a|a)*$`` takes about 70 ms of CPU on this name (exponential in the run of a's):
#: well under any budget alone, 40 of them well over 0.5 s.
SLOW = "(a|a)*$"


def _model(run: int = 18) -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("a" * run + "b", nn.Linear(1, 1))
    return model


def _slow_file(count: int = 40) -> str:
    return "".join(f'freeze name~"{SLOW}"?\n' for _ in range(count))


# ------------------------------------------------------------------ parse-time check


@pytest.mark.parametrize(
    "pattern",
    [
        "(?>a+)+",  # atomic group inside repetition
        "x(?>(a+)+)",  # repetition inside an atomic group
        "(a)(?(1)(b+)+|c)",  # conditional group, yes arm
        "(a)?(?(1)c|(b+)+)",  # conditional group, no arm
        "((.{0,100}){0,100}){0,100}X",  # bounded, but 10^6 ways
        "(.*.){12}X",  # unbounded inside a bounded repetition
        "(a{1,5})+",  # bounded inside unbounded
        "(?:a++)+",  # possessive inside repetition
        "(?=(a+)+)x",
        "(a+)+",
    ],
)
def test_catastrophic_patterns_are_refused_with_a_location(pattern: str) -> None:
    text = f'freeze layer1\nfreeze name~"{pattern}"'
    with pytest.raises(RuleSyntaxError, match="nests repetition") as info:
        parse(text, path="r.frz")
    assert (info.value.path, info.value.line, info.value.col) == ("r.frz", 2, 14)
    assert str(info.value).startswith("r.frz:2:14: regular expression")


@pytest.mark.parametrize(
    "pattern",
    [r"(\d{1,3}\.){3}", r"^layer\d+\.", "(ab|cd)+x", "(a|a)*$", r"(?>\d+)\.", "a{2,10}b{1,10}"],
)
def test_reasonable_patterns_still_parse(pattern: str) -> None:
    parse(f'freeze name~"{pattern}"')


@pytest.mark.parametrize("pattern", ["[[:alpha:]]", "[a&&b]", "[a||b]", "[a~~b]", "[[x]"])
def test_patterns_the_engines_read_differently_are_refused(pattern: str) -> None:
    with pytest.raises(RuleSyntaxError, match="is ambiguous") as info:
        parse(f'freeze name~"{pattern}"', path="r.frz")
    assert (info.value.line, info.value.col) == (1, 14)


# ------------------------------------------------------------------ one budget per file


def test_many_slow_regexes_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """40 regexes of ~70 ms each: 2.8 s without a file budget; stopped at 0.5 s with it."""
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.5")
    rules = freezedsl.compile(_slow_file(), path="slow.frz")
    model = _model()
    start = time.process_time()
    with pytest.raises(SelectionError, match=r"took more than 0\.5 s in all") as info:
        rules.plan(model)
    assert time.process_time() - start < 0.5 + 1.0
    err = info.value
    assert err.path == "slow.frz" and err.col == 8 and err.line is not None and err.line > 1
    assert str(err).startswith(f"slow.frz:{err.line}:8: name~")


def test_fast_regexes_are_not_charged_for_other_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only matching counts: a cheap file on a model with many names passes a tiny budget."""
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.05")
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(300)])
    plan = freezedsl.compile('freeze name~"^1\\d*\\."\nfreeze name~"bias$"').plan(model)
    assert plan is not None


def test_budget_holds_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SIGALRM guard did nothing outside the main thread; apply froze the process."""
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.3")
    model = _model(24)  # ~4 s per match without a bound
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            freezedsl.apply(model, f'freeze name~"{SLOW}"')
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - hand it to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the regex ran unbounded in a worker thread"
    assert isinstance(outcome[0], SelectionError)
    assert all(p.requires_grad for p in model.parameters())  # nothing half-applied


def test_budget_holds_with_the_programs_own_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A running ITIMER_REAL used to switch the SIGALRM budget off silently."""
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.3")
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 1000.0)
    try:
        start = time.process_time()
        with pytest.raises(SelectionError, match="took more than 0.3 s"):
            freezedsl.compile(f'freeze name~"{SLOW}"').plan(_model(24))
        assert time.process_time() - start < 0.3 + 1.0
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 900  # the program's timer untouched
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


def test_type_regex_shares_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.3")
    model = nn.Sequential(nn.Linear(2, 2))
    model.add_module("odd", type("a" * 24 + "b", (nn.Linear,), {})(1, 1))
    with pytest.raises(SelectionError, match="class names") as info:
        freezedsl.compile('freeze type~"(a|a)*$"', path="t.frz").plan(model)
    assert (info.value.line, info.value.col) == (1, 8)


def test_lint_with_a_model_reports_fz004_once_within_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """lint --model checked each regex in several passes, each with its own budget."""
    monkeypatch.setenv(rx.REGEX_BUDGET_ENV, "0.5")
    start = time.process_time()
    found = check_source("slow.frz", "freeze 0\n" + _slow_file(), _model())
    assert time.process_time() - start < 0.5 + 1.5
    budget = [d for d in found if d.code == "FZ004"]
    assert len(budget) == 1
    assert budget[0].line is not None and budget[0].line > 1 and budget[0].col == 8
    assert "took more than 0.5 s in all" in budget[0].message


def test_lint_with_a_model_correct_twin_has_no_fz004() -> None:
    found = check_source("ok.frz", 'freeze name~"^0\\."\nfreeze name~"a+b"?\n', _model())
    assert not [d for d in found if d.code == "FZ004"]


def test_shared_budget_nests_and_is_per_thread() -> None:
    with rx.shared_budget(5.0) as outer:
        with rx.shared_budget(1.0) as inner:
            assert inner is outer
        seen: list[rx.Budget] = []
        t = threading.Thread(target=lambda: seen.append(rx.file_budget()))
        t.start()
        t.join()
        assert seen[0] is not outer and rx.file_budget() is outer
    assert rx.file_budget() is not outer


# ------------------------------------------------------------------ one dialect


@pytest.mark.parametrize(
    "pattern",
    [r"\.norm[12]\.", r"^blocks\.\d+\.attn\.[qk]\.", r"\.(q|k|v)_proj\.", "bias$", r"^layer\d+\.\d+\."],
)
def test_common_patterns_take_the_fast_engine(pattern: str) -> None:
    assert rx.is_fast(pattern)


@pytest.mark.parametrize("pattern", [SLOW, ".*.*X", r"(\w+)\.\1", "(ab)+c"])
def test_backtracking_patterns_take_the_bounded_engine(pattern: str) -> None:
    assert not rx.is_fast(pattern)


_PIECES = st.sampled_from(
    [
        "a", "b", ".", r"\.", r"\d", r"\w", r"\s", r"\b", r"\B", "^", "$", r"\A", r"\Z",
        "[ab]", "[^a]", "[a-c]", r"[\d.]", "(a|b)", "(?:ab|b)", "(?=a)", "(?!b)", "(?<=a)",
        "(?i:A)", "(?P<g>a)", "\\u00e9", "é", "[[]", r"\[",
    ]
)  # fmt: skip
_QUANT = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "*?", "+?", "??", "{0,2}?"])


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.tuples(_PIECES, _QUANT), min_size=1, max_size=5),
    flags=st.sampled_from(["", "(?i)", "(?s)", "(?a)"]),
    # never empty: re and regex differ on \B against "" (a name or class name is never empty)
    names=st.lists(st.text("ab.1_é\nA[", min_size=1, max_size=12), min_size=1, max_size=6),
)
def test_regex_engine_agrees_with_re_on_the_dialect(
    parts: list[tuple[str, str]], flags: str, names: list[str]
) -> None:
    """Where the bounded engine is used it must mean what Python's re means."""
    pattern = flags + "".join(
        p + (q if q and not p.startswith(("(?=", "(?!", "(?<", "^", "$", "\\A", "\\Z", "\\b", "\\B")) else "")
        for p, q in parts
    )
    try:
        parse(f'freeze name~"{pattern}"')
    except RuleSyntaxError:
        return
    ours = re.compile(pattern)
    theirs = regex.compile(pattern)
    for name in names:
        a, b = ours.search(name), theirs.search(name, timeout=5)
        assert (a and a.span()) == (b and b.span()), (pattern, name)
    budget = rx.Budget(5.0)
    expected = [i for i, n in enumerate(names) if ours.search(n)]
    assert rx.Matcher(pattern).hits(names, budget) == expected
    slow = rx.Matcher(pattern)
    slow.fast, slow._regex = False, theirs
    assert slow.hits(names, budget) == expected


def test_a_long_regex_costs_linear_time() -> None:
    """A 100,000-character regex: classifying it was quadratic (list.pop(0)), and the
    'did you mean' hint ran difflib over it once per name."""
    pattern = "x" * 100_000
    start = time.process_time()
    assert rx.is_fast(pattern)
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(200)])
    with pytest.raises(SelectionError, match="matches no parameter name"):
        freezedsl.compile(f'freeze name~"{pattern}"').plan(model)
    assert time.process_time() - start < 15  # ~2 s; the quadratic walk alone took far longer
