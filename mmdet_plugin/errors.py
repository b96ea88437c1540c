"""Hand a bnnas error that stops mmdet's train/test script to ``tools/det.py``, which prints it as the last line.

mmdet's ``tools/train.py`` and ``tools/test.py`` do not catch exceptions, so a ``BNNASError`` (a broken COCO file, a
missing backbone checkpoint) ends in a long traceback whose useful part is one line in the middle, prefixed by
mmengine's registry with ``class `X` in y.py:`` once per nesting level. ``tools/det.py`` runs those scripts through
mim in a child process with ``BNNAS_ERROR_FILE`` naming a file; only there does importing the plugin install
:func:`_hook`, which writes the innermost ``BNNASError``'s message to that file (``BNNAS_TRACEBACK=1`` also prints
the traceback) for the parent to print after everything mim printed. Anywhere else the plugin leaves
``sys.excepthook`` alone.
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
    previous = _previous_hook or sys.__excepthook__
    msg = plugin_message(exc)
    path = os.environ.get(ERROR_FILE_ENV)
    if msg is None or not path:
        previous(exc_type, exc, tb)
        return
    if os.environ.get(TRACEBACK_ENV):
        previous(exc_type, exc, tb)
    try:
        with open(path, "w") as f:
            f.write(msg + "\n")
    except OSError:
        previous(exc_type, exc, tb)  # the parent cannot print it: keep the traceback


def install_excepthook_for_det_tool() -> None:
    """Install :func:`_hook` when ``tools/det.py`` started this process (``BNNAS_ERROR_FILE`` set); idempotent."""
    global _previous_hook
    if not os.environ.get(ERROR_FILE_ENV) or sys.excepthook is _hook:
        return
    _previous_hook = sys.excepthook
    sys.excepthook = _hook
