"""Rank correlation: Kendall's tau-b and Spearman's rho (with ties), written out so the definitions are on the page.

``tests/test_indicator_trust.py`` checks both against scipy.stats; p-values come from scipy.
"""

from __future__ import annotations

import math

import numpy as np


def average_ranks(x) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _check(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-d vectors of equal length, got {x.shape} and {y.shape}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("rank correlation of vectors containing NaN")
    return x, y


def kendall_tau(x, y) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)), O(n^2) pairs.

    NaN when either vector is constant (fewer than two distinct values).
    """
    x, y = _check(x, y)
    i, j = np.triu_indices(len(x), 1)
    sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    s = float((sx * sy).sum())
    nx, ny = float((sx != 0).sum()), float((sy != 0).sum())  # pairs not tied in x / in y
    if nx == 0 or ny == 0:
        return float("nan")
    return s / math.sqrt(nx * ny)


def spearman_rho(x, y) -> float:
    """Spearman's rho: Pearson correlation of the average ranks. NaN when either vector is constant."""
    x, y = _check(x, y)
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def correlation_report(x, y) -> dict:
    """tau, rho, their scipy p-values (two-sided) and n; p-values are None if scipy is missing or n < 3."""
    x, y = _check(x, y)
    out = {"n": int(len(x)), "kendall_tau": kendall_tau(x, y), "spearman_rho": spearman_rho(x, y),
           "kendall_p": None, "spearman_p": None}
    if len(x) >= 3 and np.isfinite(out["kendall_tau"]) and np.isfinite(out["spearman_rho"]):
        try:
            from scipy import stats
        except ImportError:  # pragma: no cover
            return out
        out["kendall_p"] = float(stats.kendalltau(x, y).pvalue)
        out["spearman_p"] = float(stats.spearmanr(x, y).pvalue)
    return out
