"""Progress bars that are drawn only on a terminal: redrawn to a file or a pipe, they fill it with carriage returns."""

from __future__ import annotations

from typing import Any, Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable, enabled: bool = True, **kwargs: Any) -> tqdm:
    """tqdm over ``iterable``; off unless ``enabled`` and stderr is a terminal (tqdm's ``disable=None``), so
    ``bar.disable`` tells the caller to log one line every N steps instead."""
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=None if enabled else True, **kwargs)
