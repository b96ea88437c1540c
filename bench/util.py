"""Timing and reporting helpers shared by the benchmark rows.

Every timed comparison is *interleaved*: each repetition runs every contender once, in turn, after a common warm-up,
so slow drifts of a shared machine (other jobs, clock changes) hit all contenders alike, and ratios are formed per
repetition before taking the median.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], object]], warmup: int, reps: int, device: torch.device,
                per_rep: int = 1) -> dict[str, np.ndarray]:
    """Seconds per call of every fn, ``reps`` samples each, each sample the mean of ``per_rep`` back-to-back calls."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(per_rep):
                fn()
            sync(device)
            out[name].append((time.perf_counter() - t0) / per_rep)
    return {k: np.asarray(v) for k, v in out.items()}


@dataclass
class Stat:
    """Median and spread (inter-quartile range, min, max) of a sample."""

    values: np.ndarray

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    def iqr(self) -> tuple[float, float]:
        return float(np.percentile(self.values, 25)), float(np.percentile(self.values, 75))

    def fmt(self, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
        v = self.values * scale
        q1, q3 = np.percentile(v, 25), np.percentile(v, 75)
        return (f"{np.median(v):.{digits}f}{unit} (IQR {q1:.{digits}f}-{q3:.{digits}f}, "
                f"min {v.min():.{digits}f}, max {v.max():.{digits}f}, n={len(v)})")


@dataclass
class RowResult:
    row: int
    what: str
    anchor: str
    target: str
    ours: str = ""  # the headline number(s), printed in the table
    met: bool | None = None  # None: not measured / not applicable here
    details: list[str] = field(default_factory=list)  # absolute times etc., printed under the table
    data: dict = field(default_factory=dict)  # raw numbers for --json

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "n/a"}[self.met]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu ({cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})"


def load_avg() -> str:
    try:
        a = os.getloadavg()
        return f"{a[0]:.2f} / {a[1]:.2f} / {a[2]:.2f} (1/5/15 min) on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def count_macs(model: nn.Module, run: Callable[[], object]) -> float:
    """MACs per call of ``run`` as the paper counts them: convolutions C_in/g * k^2 * C_out * H_out * W_out,
    linear layers (2 C_in - 1) * C_out; BN, activations, pooling and adds are free. Divide by the batch yourself."""
    total = [0.0]

    def conv_hook(m: nn.Conv2d, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += out.numel() * (m.in_channels // m.groups) * k

    def fc_hook(m: nn.Linear, inp, out):
        total[0] += out.numel() / m.out_features * (2 * m.in_features - 1) * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(fc_hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def top_kernels(prof, device: torch.device, k: int = 3) -> list[str]:
    """Names and share of the k most expensive kernels (CUDA kernels on GPU, aten ops by self time on CPU)."""
    events = prof.key_averages()
    if device.type == "cuda":
        rows = [(e.key, getattr(e, "self_device_time_total", 0.0) or getattr(e, "self_cuda_time_total", 0.0))
                for e in events if getattr(e, "device_type", None) is not None and str(e.device_type).endswith("CUDA")]
        if not rows:
            rows = [(e.key, getattr(e, "self_device_time_total", 0.0)) for e in events]
    else:
        rows = [(e.key, e.self_cpu_time_total) for e in events]
    rows = [r for r in rows if r[1] > 0]
    total = sum(t for _, t in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return [f"{name[:70]} {100 * t / total:.0f}%" for name, t in rows[:k]]
