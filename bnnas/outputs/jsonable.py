"""numpy (and Path) values -> plain Python values that ``json.dumps`` and ``torch.load(weights_only=True)`` accept."""

from __future__ import annotations

import math
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(obj: Any, nan_to_none: bool = False) -> Any:
    """``obj`` with numpy arrays/scalars turned into lists/Python numbers, tuples into lists, paths into strings and
    dict keys into strings, recursively. ``nan_to_none``: non-finite floats become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, nan_to_none) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, nan_to_none) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), nan_to_none)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, PurePath):
        return str(obj)
    if nan_to_none and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
