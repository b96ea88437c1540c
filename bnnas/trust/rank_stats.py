"""Rank correlation through scipy.stats: Kendall's tau-b, Spearman's rho (both tie-aware) and their p-values, and
the bootstrap CIs of the ranking study (subnets resampled; the ground truth's seed-to-seed agreement)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 2000  # resamples of the ranking study's CIs (K subnets: cheap)


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


def bootstrap_ci(pairs: list[tuple], n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                 level: float = 0.95) -> dict:
    """Percentile bootstrap CIs of Kendall tau-b and Spearman rho, resampling the K subnets with replacement.

    ``pairs`` is a list of (x, y) vectors over the same K subnets; the statistic is the mean over the pairs (one pair
    for an indicator vs the ground truth, every repeat pair for the ground truth's seed agreement). Resamples in which
    a vector is constant have no tau and are dropped (counted in ``valid_*``). CIs are None when K < 3."""
    xy = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for x, y in pairs]
    n = len(xy[0][0])
    info = {"resamples": int(n_resamples), "level": level, "seed": seed,
            "method": "percentile; subnets resampled with replacement"}
    if n < 3 or n_resamples < 1:
        return {"kendall_tau_ci": None, "spearman_rho_ci": None, "bootstrap": info}
    idx = np.random.default_rng([seed, 2024]).integers(0, n, size=(n_resamples, n))
    taus = np.empty(n_resamples)
    rhos = np.empty(n_resamples)
    with warnings.catch_warnings():  # constant resamples warn and give NaN; they are dropped below
        warnings.simplefilter("ignore")
        for b, i in enumerate(idx):
            taus[b] = np.mean([stats.kendalltau(x[i], y[i]).statistic for x, y in xy])
            rhos[b] = np.mean([stats.spearmanr(x[i], y[i]).statistic for x, y in xy])
    q = [50 * (1 - level), 50 * (1 + level)]

    def ci(v: np.ndarray) -> list[float] | None:
        v = v[np.isfinite(v)]
        return [float(c) for c in np.percentile(v, q)] if len(v) else None

    info.update(valid_tau=int(np.isfinite(taus).sum()), valid_rho=int(np.isfinite(rhos).sum()))
    return {"kendall_tau_ci": ci(taus), "spearman_rho_ci": ci(rhos), "bootstrap": info}


def seed_agreement(acc_runs: list[list[float]], n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict | None:
    """How well the ground truth agrees with itself: tau / rho between the accuracies of the K subnets under two
    training seeds, averaged over every pair of repeats, with a bootstrap CI. None with fewer than 2 repeats.

    An indicator cannot rank the subnets more consistently than two runs of the ground truth rank each other, so this
    is (roughly: the ground truth used is the mean of the repeats, a little less noisy than one) the ceiling of
    every indicator's tau."""
    r = min(len(a) for a in acc_runs)
    if r < 2:
        return None
    runs = np.array([a[:r] for a in acc_runs], dtype=np.float64)  # (K, repeats)
    pairs = [(runs[:, a], runs[:, b]) for a in range(r) for b in range(a + 1, r)]
    per_pair = [{"repeats": [a, b], "kendall_tau": kendall_tau(runs[:, a], runs[:, b]),
                 "spearman_rho": spearman_rho(runs[:, a], runs[:, b])} for a in range(r) for b in range(a + 1, r)]
    out = {"repeats": r, "kendall_tau": float(np.mean([p["kendall_tau"] for p in per_pair])),
           "spearman_rho": float(np.mean([p["spearman_rho"] for p in per_pair])), "per_pair": per_pair,
           "mean_seed_std": float(runs.std(axis=1).mean()),  # training noise of one subnet's accuracy
           "spread_of_means": float(np.ptp(runs.mean(axis=1)))}  # the signal: best minus worst subnet
    out.update(bootstrap_ci(pairs, n_resamples, seed))
    return out
