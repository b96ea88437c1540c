"""Make a bnnas error the last line a user sees when mmdet's train/test scripts stop on it.

mmdet's ``tools/train.py`` and ``tools/test.py`` do not catch exceptions, so a ``BNNASError`` (a broken COCO file, a
missing backbone checkpoint) ends in a long traceback whose useful part is one line in the middle, prefixed by
mmengine's registry with ``class `X` in y.py:`` once per nesting level. :func:`install_excepthook` (run when the
plugin is imported) replaces that traceback with ``error: <message>`` on stderr; ``BNNAS_TRACEBACK=1`` keeps the
traceback above it. When ``BNNAS_ERROR_FILE`` names a file, the message goes there instead, and the parent process
(``tools/det.py`` around ``mim``) prints it after everything mim printed.
"""

from __future__ import annotations

import os
import re
import sys
from types import TracebackType

from bnnas.errors import BNNASError

ERROR_FILE_ENV = "BNNAS_ERROR_FILE"
TRACEBACK_ENV = "BNNAS_TRACEBACK"
_REGISTRY_PREFIX = re.compile(r"^(?:class `[^`]+` in [^:]+\.py: )+")
_previous_hook = None


def plugin_message(exc: BaseException | None) -> str | None:
    """The message of the innermost ``BNNASError`` in ``exc``'s cause/context chain, without registry prefixes."""
    found = None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, BNNASError):
            found = exc
        exc = exc.__cause__ or exc.__context__
    if found is None:
        return None
    return " ".join(_REGISTRY_PREFIX.sub("", str(found)).split())  # one line, whatever the message held


def _hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    msg = plugin_message(exc)
    if msg is None:
        (_previous_hook or sys.__excepthook__)(exc_type, exc, tb)
        return
    if os.environ.get(TRACEBACK_ENV):
        (_previous_hook or sys.__excepthook__)(exc_type, exc, tb)
    path = os.environ.get(ERROR_FILE_ENV)
    if path:
        try:
            with open(path, "w") as f:
                f.write(msg + "\n")
            return  # the parent (tools/det.py) prints it after mim's output
        except OSError:
            pass  # then print it here
    sys.stderr.flush()
    sys.stderr.write(f"error: {msg}\n")
    sys.stderr.flush()


def install_excepthook() -> None:
    """Route uncaught ``BNNASError`` through :func:`_hook` (idempotent; other exceptions keep the old hook)."""
    global _previous_hook
    if sys.excepthook is _hook:
        return
    _previous_hook = sys.excepthook
    sys.excepthook = _hook
