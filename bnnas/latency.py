"""Per-op latency lookup table, measured on the current device: latency, like FLOPs, is modelled as a per-layer sum,
so every search (the exact solver included) takes a latency budget unchanged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import atomic_write_text
from .flops import CostTable
from .ops import Head, build_op, build_stem
from .space import SearchSpace


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
        doc = json.loads(Path(cache).read_text())
        if doc.get("key") == key:
            per_op = np.array(doc["per_op"], dtype=np.float64)
            return CostTable(np.where(per_op >= 1e30, np.inf, per_op), doc["base"], "seconds")
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
