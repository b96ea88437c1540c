"""Per-op latency lookup table, measured on the current device: latency, like FLOPs, is modelled as a per-layer sum,
so every search (the exact solver included) takes a latency budget unchanged.

Timing noise is measured, not hidden. Every op is timed in blocks with ``torch.utils.benchmark.Timer``; the ops are
visited round-robin (one block each per pass, alternating direction) so that slow drifts of a shared machine's load
hit every op alike instead of inflating whichever ops were timed during a busy spell. Passes continue until every
op's median is stable (its estimated standard error is below ``threshold`` of the median) or the time cap is hit.
The table keeps each op's interquartile range over passes (``spread``); :func:`latency_noise_warning` compares it
with the latency gaps the search decides on.

``runtime`` picks where ops run: ``torch`` (eager PyTorch on the device) or ``onnxruntime`` (each op exported to ONNX
and run in its own onnxruntime CPU session, timed the same way). A per-network constant the per-op sum misses
(dispatch, the sessions' own overhead) can be fitted by ``bnnas latency-check`` and is stored with the table
(``offset``, included in ``base``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.outputs.jsonable import to_jsonable
from bnnas.core.flops import CostTable
from bnnas.core.ops import Head, build_op, build_stem
from bnnas.core.space import SearchSpace
from bnnas.errors import BNNASError

log = logging.getLogger("bnnas")
CACHE_FORMAT = 2  # 1 (no "format" field): medians of 10 back-to-back calls, no spread; such caches are re-measured
RUNTIMES = ("torch", "onnxruntime")
_ABSENT = 1e30  # JSON has no inf: marks a layer's missing choices in the cached per_op


@dataclass(frozen=True)
class LatencyTable(CostTable):
    """A :class:`CostTable` in seconds plus each op's timing spread (interquartile range over passes, seconds).

    ``spread[l, c]`` is NaN where layer l has no choice c; ``base_spread`` is the stem + head spread.
    """

    spread: np.ndarray | None = None
    base_spread: float = 0.0
    passes: int = 0  # timing blocks per op behind each median
    offset: float = 0.0  # per-network constant fitted by latency-check, already included in ``base`` (seconds)


@dataclass(frozen=True)
class TimingSettings:
    """When to stop timing: once every op's median is stable, or at the pass or time cap (see
    :func:`measure_latency_table`)."""

    threshold: float = 0.02  # relative standard error of every op's median that counts as stable
    block_seconds: float = 0.002  # length of one timing block
    min_passes: int = 5  # passes before stability is first checked
    max_passes: int = 200
    max_seconds: float = 20.0  # timing cap, checked after each pass
    threads: int | None = None  # torch intra-op threads while timing (None: the current setting)


def _timer(module: nn.Module, x: torch.Tensor, threads: int, runtime: str = "torch") -> benchmark.Timer:
    """A timer of one call of ``module(x)`` in ``runtime``; for onnxruntime the module is exported first."""
    module.eval()
    if runtime == "onnxruntime":
        from bnnas.core.onnx_io import ort_session, to_onnx

        session = ort_session(to_onnx(module, x), threads)
        feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}
        return benchmark.Timer(stmt="run(None, feed)", globals={"run": session.run, "feed": feed},
                               num_threads=threads)
    return benchmark.Timer(stmt="module(x)", globals={"module": module, "x": x}, num_threads=threads)


def latency_key(space: SearchSpace, runtime: str, device: torch.device, threads: int, batch: int) -> str:
    """What a cached table must have been measured for: the space (a file space by its hash too), runtime, device,
    threads, input size and batch."""
    name = f"{space.name}#{space.file_sha256[:16]}" if space.file_sha256 else space.name
    return f"{name}|{runtime}|{device.type}|t{threads}|{space.input_size}px|b{batch}"


def check_runtime(runtime: str, device: torch.device | str) -> None:
    """Refuse a runtime this module cannot time on ``device`` (onnxruntime runs on the CPU provider here)."""
    if runtime not in RUNTIMES:
        raise BNNASError(f"unknown latency runtime {runtime!r}; use {' or '.join(RUNTIMES)}")
    if runtime == "onnxruntime" and torch.device(device).type != "cpu":
        raise BNNASError("--latency-runtime onnxruntime measures on the CPU; pass --device cpu")


@torch.no_grad()
def _block_size(timer: benchmark.Timer, block_seconds: float) -> int:
    """Calls per timing block so that one block lasts about ``block_seconds``; ``blocked_autorange`` warms the op up
    and measures one call."""
    once = timer.blocked_autorange(min_run_time=block_seconds).median
    return int(min(100_000, max(1, math.ceil(block_seconds / max(once, 1e-7)))))


@torch.no_grad()
def _measure(units: list[tuple[nn.Module, torch.Tensor]], timing: TimingSettings, threads: int,
             runtime: str = "torch") -> np.ndarray:
    """(units, passes) per-call seconds in ``runtime``, one block per unit per pass."""
    timers = [_timer(m, x, threads, runtime) for m, x in units]
    numbers = [_block_size(t, timing.block_seconds) for t in timers]
    samples: list[list[float]] = [[] for _ in timers]
    t0 = time.perf_counter()
    for p in range(timing.max_passes):
        order = range(len(timers)) if p % 2 == 0 else range(len(timers) - 1, -1, -1)
        for i in order:
            samples[i].append(timers[i].timeit(numbers[i]).median)
        if p + 1 >= timing.min_passes:
            arr = np.asarray(samples)
            med = np.median(arr, axis=1)
            q1, q3 = np.percentile(arr, [25, 75], axis=1)
            # standard error of a median ~ 1.2533 * sigma / sqrt(n), sigma ~ IQR / 1.349
            se = 0.929 * (q3 - q1) / math.sqrt(p + 1)
            if (se <= timing.threshold * med).all() or time.perf_counter() - t0 > timing.max_seconds:
                break
    return np.asarray(samples)


def _load_cache(cache: Path, key: str, shape: tuple[int, int]) -> LatencyTable | None:
    """The cached table if it was written for ``key`` in the current format; None means measure again."""
    try:
        doc = json.loads(Path(cache).read_text())
        if doc.get("format") != CACHE_FORMAT or doc.get("key") != key:
            return None
        per_op = np.array(doc["per_op"], dtype=np.float64)
        spread = np.array([[np.nan if v is None else v for v in row] for row in doc["spread"]], dtype=np.float64)
        if spread.shape != per_op.shape or per_op.shape != shape:
            raise ValueError(f"a {per_op.shape} table for a {shape} space")
        offset = float(doc.get("offset", 0.0))
        return LatencyTable(np.where(per_op >= _ABSENT, np.inf, per_op), float(doc["base"]) + offset, "seconds",
                            spread, float(doc["base_spread"]), int(doc.get("passes", 0)), offset)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        # unreadable or foreign file: re-measure rather than fail a search
        log.warning("latency cache %s is unreadable (%s: %s); measuring again", cache, type(e).__name__, e)
        return None


def measure_latency_table(space: SearchSpace, device: torch.device | str = "cpu", batch: int = 1,
                          cache: Path | None = None, *, timing: TimingSettings = TimingSettings(),
                          runtime: str = "torch") -> LatencyTable:
    """Median seconds of every candidate op at its layer's input shape, plus stem+head as the fixed part, with each
    op's spread (IQR over passes).

    Stops when every op's median has a relative standard error <= ``timing.threshold`` (after
    ``timing.min_passes``), or after ``timing.max_passes`` passes or ``timing.max_seconds`` of timing (checked after
    each pass). ``timing.threads``: intra-op threads of torch or onnxruntime while timing (default: torch's current
    setting). A ``cache`` written for the same :func:`latency_key` in the current format is reused; an older or
    unreadable one is measured again and overwritten.
    """
    device = torch.device(device)
    check_runtime(runtime, device)
    threads = torch.get_num_threads() if timing.threads is None else int(timing.threads)
    key = latency_key(space, runtime, device, threads, batch)
    if cache is not None and Path(cache).exists():
        cached = _load_cache(Path(cache), key, (len(space.layers), space.max_choices))
        if cached is not None:
            return cached
    units, where = _timing_units(space, device, batch)
    samples = _measure(units, timing, threads, runtime)
    med = np.median(samples, axis=1)
    q1, q3 = np.percentile(samples, [25, 75], axis=1)
    iqr = q3 - q1
    per_op = np.full((len(space.layers), space.max_choices), np.inf)
    spread = np.full(per_op.shape, np.nan)
    for i, (li, ci) in enumerate(where):
        per_op[li, ci], spread[li, ci] = med[i], iqr[i]
    # the last two units are the stem and the head: together the fixed part of every subnet
    table = LatencyTable(per_op, float(med[-2] + med[-1]), "seconds", spread, float(iqr[-2] + iqr[-1]),
                         samples.shape[1])
    if cache is not None:
        _write_cache(Path(cache), key, table, threads)
    return table


def store_offset(cache: Path, table: LatencyTable, offset: float) -> LatencyTable:
    """``table`` with its per-network ``offset`` (seconds) replaced, written to its ``cache`` (measured for the same
    key) so that later searches with that cache predict with it."""
    doc = json.loads(Path(cache).read_text())
    fitted = LatencyTable(table.per_op, table.base - table.offset + offset, table.unit, table.spread,
                          table.base_spread, table.passes, offset)
    _write_cache(Path(cache), doc["key"], fitted, int(doc.get("threads", 0)))
    return fitted


def _timing_units(space: SearchSpace, device: torch.device,
                  batch: int) -> tuple[list[tuple[nn.Module, torch.Tensor]], list[tuple[int, int]]]:
    """Every candidate op with an input of its layer's shape (and its (layer, choice)), then the stem and the head."""
    units: list[tuple[nn.Module, torch.Tensor]] = []
    where: list[tuple[int, int]] = []
    for li, l in enumerate(space.layers):
        x = torch.randn(batch, l.cin, l.size_in, l.size_in, device=device)
        for ci, op in enumerate(l.choices):
            op_module = build_op(op, l.cin, l.cout, l.stride, space.bn_after_every_op, act=space.activation)
            units.append((op_module.to(device), x))
            where.append((li, ci))
    last = space.layers[-1]
    units.append((build_stem(space).to(device),
                  torch.randn(batch, 3, space.input_size, space.input_size, device=device)))
    units.append((Head(last.cout, space.head_channels, space.num_classes, act=space.activation).to(device),
                   torch.randn(batch, last.cout, last.size_out, last.size_out, device=device)))
    return units, where


def _write_cache(cache: Path, key: str, table: LatencyTable, threads: int) -> None:
    """The table as JSON (inf and NaN, which JSON lacks, as ``_ABSENT`` and null), for :func:`_load_cache`; ``base``
    without the offset, which is stored beside it."""
    per_op = table.per_op
    atomic_write_text(cache, json.dumps({
        "format": CACHE_FORMAT, "key": key, "offset": table.offset,
        "per_op": np.where(np.isfinite(per_op), per_op, _ABSENT).tolist(), "base": table.base - table.offset,
        "spread": to_jsonable(table.spread, nan_to_none=True),
        "base_spread": table.base_spread, "passes": table.passes, "threads": threads,
    }))


def latency_noise_warning(table: CostTable, budget: float, choices: Sequence[int] | np.ndarray | None = None,
                          room_fraction: float = 0.1) -> str | None:
    """A warning when the latency table's measurement noise is as large as the latency differences the search
    decides on; None when the table is precise enough (or has no spread, e.g. a FLOPs table).

    ``noise`` is the summed per-op spread (IQR, plus the stem+head spread) of ``choices`` (the chosen subnet) or, when
    None, of a typical subnet (each layer's median op spread). It is compared with
      * ``gap``: the median over searchable layers of the latency step from the chosen op to its nearest alternative
        (without ``choices``: the layer's two closest ops) -- the swaps that separate the winner from its runners-up;
      * ``room_fraction`` of the room ``budget - cheapest subnet``, the latency the search shares out among layers.
    It warns when ``noise > gap`` or ``noise > room_fraction * room``: then re-measuring the table may pick another
    subnet for the same budget.
    """
    spread = getattr(table, "spread", None)
    if spread is None:
        return None
    cost = np.asarray(table.per_op, dtype=np.float64)
    spread = np.asarray(spread, dtype=np.float64)
    valid = np.isfinite(cost) & np.isfinite(spread)
    picked = None if choices is None else np.asarray(choices, dtype=np.int64)
    noise = _subnet_noise(spread, valid, picked) + float(getattr(table, "base_spread", 0.0))
    gap = _typical_gap(cost, valid, picked)
    room = float(budget) - table.min_total
    reasons = []
    if noise > gap:
        reasons.append(f"it exceeds the typical latency step between a layer's op and its nearest alternative "
                       f"({gap * 1e3:.4f} ms)")
    if room > 0 and noise > room_fraction * room:
        reasons.append(f"it exceeds {room_fraction:.0%} of the budget's room above the fastest subnet "
                       f"({room * 1e3:.4f} ms)")
    if not reasons:
        return None
    which = "the chosen subnet" if picked is not None else "a typical subnet"
    return (f"latency table is noisy: the summed timing spread (IQR) of {which} is {noise * 1e3:.4f} ms and "
            + " and ".join(reasons) + "; the same budget may select a different subnet when the table is measured "
            "again (measure on an idle device, raise max_seconds, or search by FLOPs)")


def _subnet_noise(spread: np.ndarray, valid: np.ndarray, picked: np.ndarray | None) -> float:
    """Summed op spread of the ``picked`` subnet, or of a typical one (each layer's median op spread)."""
    if picked is not None:
        return float(spread[np.arange(len(spread)), picked].sum())
    return float(sum(np.median(spread[l, valid[l]]) for l in range(len(spread)) if valid[l].any()))


def _typical_gap(cost: np.ndarray, valid: np.ndarray, picked: np.ndarray | None) -> float:
    """Median over layers with a choice of the latency step from the picked op (or, without ``picked``, between the
    two closest ops) to its nearest alternative; inf when no layer has a choice."""
    gaps = []
    for l in range(len(cost)):
        c = cost[l, valid[l]]
        if len(c) < 2:
            continue
        if picked is not None:
            others = np.delete(cost[l], picked[l])[np.delete(valid[l], picked[l])]
            gaps.append(np.abs(others - cost[l, picked[l]]).min())
        else:
            gaps.append(np.diff(np.sort(c)).min())
    return float(np.median(gaps)) if gaps else np.inf
