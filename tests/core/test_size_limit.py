"""The rule-file size limit (1 MiB) keeps the worst file cheap to check.

A 16 MiB file just under the old limit took 78 s and 2.4 GB in ``check``: parsing is
linear, so the limit is the bound. A file at the limit must parse in seconds, one byte
more must be refused with one line before any parsing.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import pytest

from freezedsl.errors import RuleSyntaxError
from freezedsl.syntax.parser import MAX_SOURCE_BYTES, parse, parse_file


def test_limit_is_one_mebibyte() -> None:
    assert MAX_SOURCE_BYTES == 1 << 20


@pytest.mark.slow
def test_worst_file_at_the_limit_parses_in_bounded_time_and_memory() -> None:
    unit = "freeze a, b, c, d, e, f, g, h\n"  # the slowest per byte of the shapes tried
    text = unit * (MAX_SOURCE_BYTES // len(unit))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    program = parse(text)
    assert time.process_time() - start < 30  # ~5 s on one core of the reference machine
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 1_000_000  # well under 1 GB (16 MiB took 2.4 GB)
    assert len(program.statements) == MAX_SOURCE_BYTES // len(unit)


def test_one_byte_over_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.frz"
    path.write_bytes(b"#" * (MAX_SOURCE_BYTES + 1))
    start = time.process_time()
    with pytest.raises(RuleSyntaxError) as info:
        parse_file(path)
    assert time.process_time() - start < 1
    assert info.value.one_line() == (
        f"{path}: rule file is {MAX_SOURCE_BYTES + 1} bytes; the limit is {MAX_SOURCE_BYTES} "
        "bytes (1 MiB); a rule file needs far less: select with globs, ** or name~ regexes "
        "instead of listing names"
    )
    with pytest.raises(RuleSyntaxError, match=r"^<rules>:1:1: rule text is 1048577 characters"):
        parse("#" * (MAX_SOURCE_BYTES + 1), path="<rules>")
