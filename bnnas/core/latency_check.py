"""Does the per-op latency table predict whole networks? Random subnets measured end to end against the table's sum.

Whole networks are timed exactly like the table's ops (:func:`bnnas.core.latency._measure`: round-robin blocks until
every median is stable), in the same runtime, so the comparison isolates what the per-layer sum misses: dispatch and
session overhead per op, cache effects between layers, operator fusion across layers. A constant part of that
(``offset``) is fitted as the median of measured minus predicted; its effect is reported with 2-fold cross-fitting
(each half's offset is fitted on the other half), so the error drop shown is not measured on the archs it was fitted
to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from bnnas.core.arch import Arch
from bnnas.core.latency import LatencyTable, TimingSettings, _measure
from bnnas.core.space import SearchSpace
from bnnas.core.subnet import SubNet


def random_choices(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``n`` distinct uniformly random archs (fewer when the space has fewer)."""
    rng = np.random.default_rng(seed)
    seen: dict[tuple[int, ...], None] = {}
    for _ in range(50 * n):
        seen.setdefault(tuple(int(rng.integers(len(l.choices))) for l in space.layers))
        if len(seen) == n:
            break
    return list(seen)


def measure_networks(space: SearchSpace, choices: list[tuple[int, ...]], timing: TimingSettings, threads: int,
                     runtime: str = "torch") -> np.ndarray:
    """Median seconds per call of each arch's whole SubNet (batch 1, the space's input size) in ``runtime``."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, space.input_size, space.input_size)
    units = [(SubNet(Arch(space, ch), dropout=0.0).eval(), x) for ch in choices]
    return np.median(_measure(units, timing, threads, runtime), axis=1)


@dataclass(frozen=True)
class PredictionErrors:
    """|predicted - measured| / measured over archs, and how well the prediction ranks them."""

    median: float
    p90: float
    kendall_tau: float
    mean_signed: float  # mean of (predicted - measured) / measured: < 0 the table under-predicts

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "p90": self.p90, "kendall_tau": self.kendall_tau,
                "mean_signed": self.mean_signed}


def prediction_errors(predicted: np.ndarray, measured: np.ndarray) -> PredictionErrors:
    rel = (predicted - measured) / measured
    tau = stats.kendalltau(predicted, measured).statistic if len(measured) > 1 else float("nan")
    return PredictionErrors(float(np.median(np.abs(rel))), float(np.percentile(np.abs(rel), 90)), float(tau),
                            float(rel.mean()))


def fit_offset(predicted: np.ndarray, measured: np.ndarray) -> float:
    """The per-network constant (seconds) that best shifts the sum onto the measurements (median: robust to a few
    archs timed during a busy spell)."""
    return float(np.median(measured - predicted))


def cross_fitted(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Predictions plus an offset fitted on the other half of the archs (2-fold)."""
    idx = np.arange(len(measured))
    out = predicted.astype(np.float64).copy()
    for fold in (idx % 2 == 0, idx % 2 == 1):
        if (~fold).any():
            out[fold] += fit_offset(predicted[~fold], measured[~fold])
    return out


def is_biased(predicted: np.ndarray, measured: np.ndarray) -> bool:
    """The sum errs mostly one way: at least 80% of archs on the same side of their measurement."""
    under = float(np.mean(predicted < measured))
    return max(under, 1.0 - under) >= 0.8


def predictions(table: LatencyTable, choices: list[tuple[int, ...]]) -> np.ndarray:
    """The table's predicted seconds of each arch (its offset included, if it has one)."""
    return np.array([table.of(ch) for ch in choices], dtype=np.float64)


def arch_at_budget(space: SearchSpace, table: LatencyTable, budget: float, seed: int = 0,
                   draws: int = 20000) -> tuple[int, ...] | None:
    """Of ``draws`` random archs, the one the table predicts slowest within ``budget`` seconds (what a search that
    spends its budget picks); None when none fits."""
    rng = np.random.default_rng(seed)
    pop = np.stack([rng.integers(len(l.choices), size=draws) for l in space.layers], axis=1)
    cost = table.batch(pop)
    if not (cost <= budget).any():
        return None
    return tuple(int(c) for c in pop[int(np.argmax(np.where(cost <= budget, cost, -np.inf)))])
