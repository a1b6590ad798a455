"""Static checks of Python training code (lint family FZ2xx).

The checks read a file with the stdlib :mod:`ast` module and never import or run it, so
they work on scripts that need GPUs, data or packages the linting machine lacks.

How it works: every *scope* (the module body, each function body, each class body) is
walked once, statements in source order, nested blocks (``if``/``for``/``with``/``try``)
included in place. The walk records a flat list of *events* (optimizer built, parameters
frozen or unfrozen, head assigned, model wrapped, ``eval()``/``train()`` called, name
rebound), each keyed by the dotted name of its receiver (``model``, ``self.net.fc``,
``model.classifier[-1]``). A call of a function of the file replays that function's
summary (:mod:`.summaries`) with its parameters and ``self`` replaced by the caller's
names. Order checks (FZ201-FZ203, FZ207, FZ208, FZ210, FZ212-FZ214; modules
:mod:`.order` and :mod:`.patterns`) then compare events of one scope; local checks
(FZ204-FZ206, FZ209; :mod:`.local`) report during the walk, and FZ211 (:mod:`.roots`)
looks at ``named_modules()`` loops on its own. There is no alias analysis beyond dotted
names and loop variables (:mod:`.binding`): precision beats recall, and every check has
a twin that must stay silent (see ``tests/lint/static_cases``).

Module map: :mod:`.rules` (rule texts), :mod:`.tables` (name tables), :mod:`.astutil`,
:mod:`.facts` (events and per-file facts), :mod:`.decides` (which name tests decide
training, for FZ206), :mod:`.walk` with :mod:`.binding`, :mod:`.summaries`, and the
check families above.

``# noqa`` comments are not handled here; the lint runner filters findings.
This module must not import torch.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings

from freezedsl.lint.registry import Diagnostic, diag
from freezedsl.lint.static.facts import _File, _scan_imports, _scan_lit_lists
from freezedsl.lint.static.grads import check_grads
from freezedsl.lint.static.order import _check_scope
from freezedsl.lint.static.roots import check_roots
from freezedsl.lint.static.rules import SYNTAX_ERROR
from freezedsl.lint.static.tables import _TRIGGERS
from freezedsl.lint.static.walk import _Scope, walk_function

__all__ = ["check_file", "check_source"]


def _split_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def _parse_failure(path: str, text: str, exc: Exception) -> Diagnostic:
    """FZ002 at the parser's position (or at the NUL byte, which has none)."""
    nul = text.find("\x00")
    if nul >= 0 and (not isinstance(exc, SyntaxError) or "null" in str(exc.msg)):
        before = _split_lines(text[:nul])
        line, col = len(before), len(before[-1]) + 1
        message = "Python file contains a NUL byte, so it cannot be parsed"
    elif isinstance(exc, SyntaxError):
        line, col = exc.lineno or 1, max(exc.offset or 1, 1)
        message = f"Python syntax error: {exc.msg or 'invalid syntax'}"
    else:
        line, col = 1, 1
        message = f"Python file is nested too deeply to parse ({type(exc).__name__})"
    return diag(SYNTAX_ERROR, f"{message}; the file was not checked", path, line=line, col=col)


def _prepare(ctx: _File, tree: ast.Module, text: str) -> None:
    """Per-file facts the walk needs before it starts (imports are scanned already)."""
    ctx.walk_function = lambda f, c: walk_function(ctx, f, c)
    ctx.order_possible = any(w in text for w in ("requires_grad", "freezedsl", ".train("))
    ctx.load_module = _load_module


# Files imported from for summaries, by (path, mtime, size): each is parsed once per
# process however many linted files import it.
_MODULES: dict[tuple[str, int, int], _File | None] = {}


def _module_file(importer: str, level: int, module: str) -> str | None:
    """The ``.py`` file ``from <level dots><module> import ...`` in ``importer`` means,
    looked up on disk: relative to the importer's folder (and, for absolute imports, to
    up to three folders above it, where the project root usually is)."""
    folder = os.path.dirname(os.path.abspath(importer))
    parts = [p for p in module.split(".") if p]
    if level:
        for _ in range(level - 1):
            folder = os.path.dirname(folder)
        bases = [folder]
    else:
        bases = [folder]
        for _ in range(3):
            folder = os.path.dirname(folder)
            bases.append(folder)
    for base in bases:
        stem = os.path.join(base, *parts)
        for candidate in (stem + ".py", os.path.join(stem, "__init__.py")):
            if parts and os.path.isfile(candidate):
                return candidate
    return None


def _load_module(importer: str, level: int, module: str) -> _File | None:
    path = _module_file(importer, level, module)
    if path is None:
        return None
    try:
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key in _MODULES:
            return _MODULES[key]
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if len(_MODULES) > 512:
        _MODULES.clear()
    _MODULES[key] = None  # an import cycle sees nothing
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    other = _File(path, _split_lines(text))
    other.tree = tree
    other.muted = 1  # never reports: it is only read for its summaries
    _scan_imports(tree.body, other)
    _scan_lit_lists(tree.body, other)
    _prepare(other, tree, text)
    _MODULES[key] = other
    return other


def check_source(path: str, text: str) -> list[Diagnostic]:
    """All FZ2xx findings for one file's text, sorted by (line, col, code); never raises.

    A file that does not parse gives a single FZ002 finding.
    """
    lines = _split_lines(text)
    ctx = _File(path, lines)
    try:
        with warnings.catch_warnings():  # invalid escapes etc. are not ours to print
            warnings.simplefilter("ignore")
            tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return [_parse_failure(path, text, e)]
    if _TRIGGERS.search(text) is None:
        return []
    try:
        ctx.tree = tree
        _scan_imports(tree.body, ctx)
        _scan_lit_lists(tree.body, ctx)
        _prepare(ctx, tree, text)
        ctx.pending.append((tree.body, None, None))
        while ctx.pending:
            body, cls, fdef = ctx.pending.pop()
            scope = _Scope(ctx, cls, fdef)
            scope.block(body)
            _check_scope(ctx, scope.events)
        if "named_modules" in text:
            check_roots(ctx, tree)
        check_grads(ctx, tree, text)
    except RecursionError:
        ctx.out.append(
            diag(
                SYNTAX_ERROR,
                "Python file is nested too deeply to check; the file was not checked",
                path,
                line=1,
                col=1,
            )
        )
    unique = {(d.line, d.col, d.code, d.message): d for d in ctx.out}
    return sorted(unique.values(), key=lambda d: (d.line or 0, d.col or 0, d.code, d.message))


def check_file(path: str) -> list[Diagnostic]:
    """Read ``path`` and check it. The encoding is found as ``tokenize.open`` (and Python)
    find it: a UTF-8 BOM or a PEP 263 coding cookie, else UTF-8. A cookie Python rejects
    (unknown encoding, or one that contradicts the BOM) gives FZ002, as Python would not
    run the file; bytes that do not decode are replaced, so a mis-encoded file is still
    checked. ``OSError`` propagates."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        head = data.split(b"\n", 2)[:2]
        line = next((i for i, ln in enumerate(head, 1) if b"coding" in ln), 0)
        if not line:  # undecodable bytes, no cookie: read as UTF-8 with replacement below
            return _check_bytes(path, data, "utf-8")
        reason = str(e.msg or e).split(" for ")[0].rstrip(":")
        detail = str(e.msg or e).rsplit(": ", 1)[-1] if ": " in str(e.msg or e) else ""
        what = f"{reason}: {detail}" if detail and detail not in reason else reason
        message = f"Python rejects the coding declaration ({what}); the file was not checked"
        return [diag(SYNTAX_ERROR, message, path, line=line, col=1)]
    return _check_bytes(path, data, encoding)


def _check_bytes(path: str, data: bytes, encoding: str) -> list[Diagnostic]:
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", "replace")
    return check_source(path, text.removeprefix("\ufeff"))
