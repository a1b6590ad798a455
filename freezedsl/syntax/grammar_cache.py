"""Where Lark keeps the analysed grammar between runs, and why reading it is safe.

Building the LALR(1) parser from grammar/freeze.lark takes about 40 ms, more than a
bare interpreter's whole start-up; Lark can save what it computed (``cache=<path>``) and
load it in about 3 ms, which keeps ``freezedsl check`` / ``fmt`` under 5x ``python -c
pass`` (benchmarks/results/startup.md measures both). Lark verifies the grammar, its own
version and Python's against the file and rebuilds it when they differ.

The file is a pickle: whoever can write it runs code in every freezedsl process that
reads it. Lark's ``cache=True`` puts it in the shared temporary directory under a
predictable name, where another user could plant one first, so freezedsl never uses
that. Its cache lives in ``$XDG_CACHE_HOME/freezedsl`` (default ``~/.cache/freezedsl``),
created with mode 0700, and is used only when that directory is a real directory owned
by this user that no one else may enter (mode 0700 or stricter: then the file's own mode,
which the umask decides, does not matter), every directory above it is owned by this
user or root and is not writable by others (or is sticky, like /tmp, where others cannot
rename it away), and the cache file, if there, is a regular file owned by this user.
That is the trust Python already gives the ``__pycache__`` files it runs. Otherwise -- no ``os.getuid`` (Windows), an unsafe or unwritable
location, ``FREEZEDSL_NO_GRAMMAR_CACHE=1`` -- there is no cache and the parser is built
at every start.
"""

from __future__ import annotations

import os
import stat
import sys

#: set to 1 to build the parser at every start (no file is read or written)
NO_CACHE_ENV = "FREEZEDSL_NO_GRAMMAR_CACHE"


def cache_file(grammar: str, lark_version: str) -> str | None:
    """The path Lark may read and write its cache at, or None for no cache."""
    if os.environ.get(NO_CACHE_ENV, "") not in ("", "0") or not hasattr(os, "getuid"):
        return None
    try:
        directory = _cache_dir()
        if directory is None:
            return None
        import hashlib

        digest = hashlib.sha256(grammar.encode("utf-8")).hexdigest()[:16]
        py = f"{sys.version_info[0]}.{sys.version_info[1]}"
        path = os.path.join(directory, f"grammar-{digest}-lark{lark_version}-py{py}.pickle")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path  # Lark writes it
        return path if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() else None
    except (OSError, ValueError):
        return None


def _cache_dir() -> str | None:
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):  # the XDG spec: relative values are ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    directory = os.path.join(os.path.abspath(base), "freezedsl")
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    directory = os.path.realpath(directory)  # check where it really is, not a link to it
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    parent = os.path.dirname(directory)
    while True:
        st = os.lstat(parent)
        if st.st_uid not in (0, os.getuid()):
            return None
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            return None
        up = os.path.dirname(parent)
        if up == parent:
            return directory
        parent = up

