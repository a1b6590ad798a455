"""Coverage-guided fuzzing of the rule-language parser with atheris (libFuzzer).

    .venv/bin/pip install atheris
    mkdir -p /tmp/frz-corpus && cp rules/*.frz /tmp/frz-corpus/
    .venv/bin/python fuzz/fuzz_parse.py /tmp/frz-corpus -max_total_time=600

Property (the same as tests/robustness/test_fuzz.py): ``parse(text)`` returns a Program
or raises RuleSyntaxError with 1 <= line <= lines+1, col >= 1 and a one-line message;
a program that parses formats to text that parses again. Anything else -- another
exception, a wrong position -- is a crash that libFuzzer saves as ``crash-<sha1>``.

Known bugs (strict xfails in tests/robustness) are skipped so the fuzzer looks for new
ones; pass ``--known-bugs`` (before the libFuzzer flags) to fuzz them too. Remove an
entry from ``_known_bug`` once its xfail is fixed.
"""

from __future__ import annotations

import re
import sys

import atheris

with atheris.instrument_imports(include=["freezedsl", "lark"]):
    import freezedsl
    from freezedsl.errors import RuleSyntaxError
    from freezedsl.syntax.parser import parse

KNOWN_BUGS = "--known-bugs" not in sys.argv
_SEPARATORS = re.compile("[\r\x0c\x85\u2028\u2029]")  # test_line_numbers_count_only_newlines
_HUGE_INT = re.compile(r"\d{4000}")  # test_huge_index/epoch_is_a_syntax_error
_HUGE_EXPONENT = re.compile(r"[eE][-+]?\d{5}")  # test_huge_factor_*


def _known_bug(text: str) -> bool:
    return bool(_SEPARATORS.search(text) or _HUGE_INT.search(text) or _HUGE_EXPONENT.search(text))


def check(text: str) -> None:
    if KNOWN_BUGS and _known_bug(text):
        return
    try:
        program = parse(text)
    except RuleSyntaxError as err:
        lines = text.count("\n") + 1
        if not (
            err.line is not None
            and 1 <= err.line <= lines + 1
            and err.col is not None
            and err.col >= 1
        ):
            raise AssertionError(
                f"bad position {err.line}:{err.col} for {lines} lines: {err}"
            ) from None
        if "\n" in err.one_line():
            raise AssertionError(f"multi-line message: {err.one_line()!r}") from None
        if "nests too deeply" in err.message:
            return  # test_except_chain_at_the_recursion_limit covers the edge
        return
    formatted = freezedsl.format(text)
    again = parse(formatted)
    if len(again.statements) != len(program.statements):
        raise AssertionError(f"format changed the program: {text!r} -> {formatted!r}")


def test_one_input(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    check(provider.ConsumeUnicodeNoSurrogates(len(data)))


def main() -> None:
    argv = [a for a in sys.argv if a != "--known-bugs"]
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
