"""Per-op latency lookup table, measured on the current device: latency, like FLOPs, is modelled as a per-layer sum,
so every search (the exact solver included) takes a latency budget unchanged."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_write_text
from .flops import CostTable
from .ops import Head, build_op, build_stem
from .space import SearchSpace

log = logging.getLogger("bnnas")


def _read_cache(path: Path, key: str, shape: tuple[int, int]) -> CostTable | None:
    """The cached table, or None (re-measure) when it is for another space/device or unreadable."""
    try:
        doc = json.loads(path.read_text())
        if doc.get("key") != key:
            return None
        per_op = np.array(doc["per_op"], dtype=np.float64)
        base = float(doc["base"])
        if per_op.shape != shape or not np.all(np.isfinite(per_op)) or not np.isfinite(base):
            raise ValueError(f"a {per_op.shape} table for a {shape} space")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        log.warning("latency cache %s is unreadable (%s: %s); measuring again", path, type(e).__name__, e)
        return None
    return CostTable(np.where(per_op >= 1e30, np.inf, per_op), base, "seconds")


@torch.no_grad()
def _time(module: nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> float:
    module.eval()
    for _ in range(warmup):
        module(x)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure_latency_table(space: SearchSpace, device: torch.device | str = "cpu", batch: int = 1, repeats: int = 10,
                          warmup: int = 3, cache: Path | None = None) -> CostTable:
    """Median seconds of every candidate op at its layer's input shape, plus stem+head as the fixed part."""
    device = torch.device(device)
    key = f"{space.name}|{device.type}|b{batch}"
    if cache is not None and Path(cache).exists():
        cached = _read_cache(Path(cache), key, (len(space.layers), space.max_choices))
        if cached is not None:
            return cached
    per_op = np.full((len(space.layers), space.max_choices), np.inf)
    for li, l in enumerate(space.layers):
        x = torch.randn(batch, l.cin, l.size_in, l.size_in, device=device)
        for ci, op in enumerate(l.choices):
            per_op[li, ci] = _time(build_op(op, l.cin, l.cout, l.stride, space.bn_after_every_op).to(device), x,
                                   repeats, warmup)
    stem = _time(build_stem(space).to(device), torch.randn(batch, 3, space.input_size, space.input_size, device=device),
                 repeats, warmup)
    last = space.layers[-1]
    head = _time(Head(last.cout, space.head_channels, space.num_classes).to(device),
                 torch.randn(batch, last.cout, last.size_out, last.size_out, device=device), repeats, warmup)
    table = CostTable(per_op, stem + head, "seconds")
    if cache is not None:
        atomic_write_text(Path(cache), json.dumps({"key": key, "per_op": np.where(np.isfinite(per_op), per_op, 1e30).tolist(),
                                                   "base": table.base}))
    return table
