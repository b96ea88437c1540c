"""Atomic, validated checkpoints: a crash mid-write never leaves a truncated file where a good one was."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bnnas.errors import BNNASError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's word for "a file is in the way", which misleads: name the file instead
        blocker = next(p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir())
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)", str(blocker)) from None


def _atomic_replace(path: Path, write) -> Path:
    path = Path(path)
    _make_parent(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are shared like any file the user writes
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    return _atomic_replace(Path(path), lambda f: torch.save(obj, f))


def atomic_write_text(path: Path, text: str) -> Path:
    return _atomic_replace(Path(path), lambda f: f.write(text.encode()))


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return _atomic_replace(Path(path), lambda f: f.write(data))


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Load a bnnas checkpoint; ``kind`` (e.g. ``"supernet"``) is checked against what the file says it holds."""
    path = Path(path)
    if not path.is_file():
        raise BNNASError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated/foreign files
        raise BNNASError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise BNNASError(f"{path} is not a bnnas checkpoint (no 'state_dict')")
    if kind is not None and ckpt.get("kind") != kind:
        raise BNNASError(f"{path} holds a {ckpt.get('kind')!r} checkpoint, expected {kind!r}")
    return ckpt


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load weights, failing with one readable line on missing/unexpected keys or shape mismatches."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[0]})")
        raise BNNASError(f"{source} does not match the model: " + "; ".join(parts))
    model.load_state_dict(state)
