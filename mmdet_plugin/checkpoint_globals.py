"""Let ``torch.load``'s default ``weights_only=True`` read the checkpoints mmengine's Runner writes.

mmengine 0.10 saves, besides tensors, its ``MessageHub`` state: ``HistoryBuffer`` objects holding numpy arrays and
numpy scalars, and each buffer's table of statistics methods, pickled as ``getattr(HistoryBuffer, 'mean')`` etc.
torch >= 2.6 loads with ``weights_only=True`` unless told otherwise, and mmengine's loader does not say otherwise, so
``mim test``, ``--resume`` and ``load_from`` fail on every Runner checkpoint with "Unsupported global".

:func:`register` allows exactly the globals such checkpoints contain (the list was read off real Runner checkpoints
with ``torch.serialization.get_unsafe_globals_in_checkpoint``; tests/test_runner_checkpoints.py re-checks it). The
``getattr`` they need is not Python's: a stand-in registered under the name ``builtins.getattr`` resolves only
``HistoryBuffer``'s statistics methods, because a free ``getattr`` would let a crafted file reach any callable.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging import HistoryBuffer


# dtypes of the values a Runner logs (losses, lr, times, counters); each dtype's class is needed to rebuild it
NUMERIC_DTYPES = ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")

# the statistics every HistoryBuffer registers on construction (a fresh process may not have built one yet)
HISTORY_BUFFER_STATISTICS = frozenset({"min", "max", "current", "mean"})


def history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` limited to what a pickled ``HistoryBuffer`` asks for: its statistics methods."""
    allowed = HISTORY_BUFFER_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and not name.startswith("_") and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"weights-only load refuses getattr({obj!r}, {name!r})")


def _numpy_core():
    try:  # numpy >= 2 moved the module; numpy 1.x pickles name numpy.core.multiarray
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    return multiarray


def runner_checkpoint_globals() -> list:
    """The non-tensor globals of mmengine Runner checkpoints, as ``add_safe_globals`` entries."""
    core = _numpy_core()
    return [
        HistoryBuffer,
        np.ndarray, np.dtype, core._reconstruct, core.scalar,  # numpy arrays and scalars in the buffers
        *sorted({type(np.dtype(t)) for t in NUMERIC_DTYPES}, key=str),  # their dtypes' classes (Float64DType, ...)
        (history_buffer_getattr, "builtins.getattr"),          # the buffers' statistics-method table
    ]


def register() -> None:
    """Add the globals to torch's weights-only allow-list (idempotent, process-wide)."""
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 has no allow-list (and loads these files without one)
        return
    add(runner_checkpoint_globals())
