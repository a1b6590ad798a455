"""Selections as bit sets: a Python int with bit ``i`` set for name (or module) ``i``.

Why ints: unions and ``except`` of selections over 100k parameter names then cost a
few machine words per 64 names, and the helpers below turn per-index loops (sums of
sizes, lists of indices) into C loops over ``bytes``. Used by the index
(:mod:`freezedsl.planning.index`), selectors and plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, count
from typing import Any

# ``bytes.translate`` table turning the text of ``bin(mask)`` into one 0/1 byte per bit.
_BITS = bytes.maketrans(b"01", b"\x00\x01")


def mask_bits(mask: int, total: int) -> bytes:
    """One byte (0 or 1) per index ``0..total-1``: bit ``i`` of ``mask`` at position ``i``.

    ``bytes`` are valid selectors for ``itertools.compress``, which turns per-index
    loops (sums of sizes, lists of indices) into C loops.
    """
    if mask <= 0:
        return bytes(total)
    text = bin(mask)[:1:-1].encode("ascii").translate(_BITS)
    return text + bytes(total - len(text)) if len(text) < total else text[:total]


def bits_mask(flags: Iterable[Any]) -> int:
    """The inverse of mask_bits: bit ``i`` set where ``flags[i]`` is true."""
    data = bytes(flags) if isinstance(flags, (bytes, bytearray)) else bytes(map(bool, flags))
    if not data:
        return 0
    return int(data[::-1].translate(_TO_TEXT), 2)


_TO_TEXT = bytes.maketrans(b"\x00\x01", b"01")


def iter_bits(mask: int) -> Iterator[int]:
    """Indices of set bits, ascending; one C loop over the mask's bit length."""
    if mask <= 0:
        return iter(())
    return compress(count(), bin(mask)[:1:-1].encode("ascii").translate(_BITS))


def weighted_sum(mask: int, weights: Sequence[int]) -> int:
    """``sum(weights[i] for i in mask)``."""
    return sum(compress(weights, mask_bits(mask, len(weights))))


def ranges_mask(total: int, ranges: Iterable[tuple[int, int]]) -> int:
    """OR of many [start, end) ranges as one int, in time linear in ``total``."""
    spans = [(s, e) for s, e in ranges if e > s]
    if not spans:
        return 0
    if len(spans) == 1:
        s, e = spans[0]
        return ((1 << (e - s)) - 1) << s
    buf = bytearray(total)
    ones = _ones(total)
    for s, e in spans:
        buf[s:e] = ones[: e - s]  # a view: no new bytes object per range
    return bits_mask(buf)


_ONES = memoryview(b"")


def _ones(n: int) -> memoryview:
    """A read-only run of at least ``n`` bytes of value 1, kept between calls."""
    global _ONES
    if len(_ONES) < n:
        _ONES = memoryview(b"\x01" * max(n, 2 * len(_ONES)))
    return _ONES


def indices_mask(total: int, indices: Iterable[int]) -> int:
    buf = bytearray(total)
    for i in indices:
        buf[i] = 1
    return bits_mask(buf)

