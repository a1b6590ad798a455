"""Pause the cyclic garbage collector around bulk allocation (torch-free).

Parsing a long rule file, indexing a model and planning allocate many small acyclic
objects; each allocation burst triggers collection passes that find nothing. Pausing the
collector saves about a third of the parse time of a 10,000-statement file.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while allocating many small acyclic objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
