"""Rank correlation through scipy.stats: Kendall's tau-b, Spearman's rho (both tie-aware) and their p-values."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def _check(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-d vectors of equal length, got {x.shape} and {y.shape}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("rank correlation of vectors containing NaN")
    return x, y


def _quiet(fn, x: np.ndarray, y: np.ndarray):
    """scipy warns on constant or tiny inputs and returns NaN; NaN is the answer we want, the warning is not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(x, y)


def kendall_tau(x, y) -> float:
    """Kendall's tau-b; NaN when either vector is constant (fewer than two distinct values)."""
    x, y = _check(x, y)
    return float(_quiet(stats.kendalltau, x, y).statistic)


def spearman_rho(x, y) -> float:
    """Spearman's rho (Pearson correlation of the average ranks); NaN when either vector is constant."""
    x, y = _check(x, y)
    return float(_quiet(stats.spearmanr, x, y).statistic)


def correlation_report(x, y) -> dict:
    """tau, rho, their two-sided p-values and n; p-values are None when n < 3 or a statistic is undefined."""
    x, y = _check(x, y)
    tau, rho = _quiet(stats.kendalltau, x, y), _quiet(stats.spearmanr, x, y)
    out = {"n": int(len(x)), "kendall_tau": float(tau.statistic), "spearman_rho": float(rho.statistic),
           "kendall_p": None, "spearman_p": None}
    if len(x) >= 3 and np.isfinite(out["kendall_tau"]) and np.isfinite(out["spearman_rho"]):
        out["kendall_p"], out["spearman_p"] = float(tau.pvalue), float(rho.pvalue)
    return out
