"""How well an indicator ranks the archs of a benchmark table: overall, inside FLOPs deciles and as a budgeted pick.

Pure functions of three vectors over the same archs (indicator score, ground-truth accuracy, FLOPs), so that a
hand-made table checks them. Under a budget only archs of about the same FLOPs compete, which is where FLOPs alone
stops ranking well; the within-decile tau and the budgeted pick measure an indicator there.
"""

from __future__ import annotations

import warnings

import numpy as np

from bnnas.trust.rank_stats import kendall_tau, spearman_rho

BUDGET_QUANTILES = (0.25, 0.50, 0.75)
BAND = 0.10  # a budget's band: archs within 10 % below it
DECILES = 10


def flops_deciles(flops: np.ndarray, n: int = DECILES) -> np.ndarray:
    """Decile label 0..n-1 of every arch, from the FLOPs quantiles (archs of equal FLOPs share a decile)."""
    edges = np.quantile(flops, np.linspace(0, 1, n + 1)[1:-1])
    return np.searchsorted(edges, flops, side="right")


def within_decile_tau(scores: np.ndarray, acc: np.ndarray, deciles: np.ndarray) -> tuple[float, list[float]]:
    """Unweighted mean of Kendall tau-b inside each FLOPs decile (deciles where tau is undefined are skipped)."""
    per = [kendall_tau(scores[deciles == d], acc[deciles == d]) for d in np.unique(deciles)]
    finite = [t for t in per if np.isfinite(t)]
    return (float(np.mean(finite)) if finite else float("nan")), per


def budgets(flops: np.ndarray, quantiles: tuple[float, ...] = BUDGET_QUANTILES) -> list[float]:
    return [float(b) for b in np.quantile(flops, quantiles)]


def band_mask(flops: np.ndarray, budget: float, band: float = BAND) -> np.ndarray:
    return (flops <= budget) & (flops >= (1.0 - band) * budget)


def budgeted_pick(scores: np.ndarray, acc: np.ndarray, in_band: np.ndarray) -> dict:
    """The arch an indicator ranks highest among the band's archs, as the expected value over tied top scores:
    its accuracy and its percentile among the band's accuracies (share of band archs at or below it, so the best
    arch of the band is at 100), next to the band's best and median accuracy."""
    a, s = acc[in_band], scores[in_band]
    if not len(a):
        return {"n": 0, "pick_acc": None, "pick_percentile": None, "best_acc": None, "median_acc": None, "ties": 0}
    top = np.flatnonzero(s == s.max())
    pct = [100.0 * np.mean(a <= a[i]) for i in top]
    return {"n": int(len(a)), "pick_acc": float(a[top].mean()), "pick_percentile": float(np.mean(pct)),
            "best_acc": float(a.max()), "median_acc": float(np.median(a)), "ties": int(len(top))}


def ranking_stats(scores, acc, flops, budget_values: list[float] | None = None,
                  deciles: np.ndarray | None = None) -> dict:
    """tau, rho, the within-decile tau and one budgeted pick per budget (budgets and deciles from ``flops`` unless
    given: a bootstrap passes the original ones so that each resample answers the same question)."""
    scores, acc, flops = (np.asarray(v, dtype=np.float64) for v in (scores, acc, flops))
    deciles = flops_deciles(flops) if deciles is None else deciles
    budget_values = budgets(flops) if budget_values is None else budget_values
    mean_dec, per_dec = within_decile_tau(scores, acc, deciles)
    return {"n": int(len(acc)), "kendall_tau": kendall_tau(scores, acc), "spearman_rho": spearman_rho(scores, acc),
            "decile_tau": mean_dec, "decile_taus": per_dec,
            "budgets": [{"budget": b, **budgeted_pick(scores, acc, band_mask(flops, b))} for b in budget_values]}


def _resampled_decile_taus(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Kendall tau-b of (x, y) for R resamples of one decile's archs at once; ``counts[r, i]`` is how often arch i
    was drawn. scipy's kendalltau costs milliseconds a call in checks and p-values, and a bootstrap over ten
    deciles needs 10^4 calls: pair signs weighted by the counts give the same tau-b in one matrix product."""
    s = (np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])).astype(np.float64)
    c = counts.astype(np.float64)
    num = ((c @ s) * c).sum(1) / 2  # concordant minus discordant pairs; copies of one arch tie, adding 0
    n = c.sum(1)
    n0 = n * (n - 1) / 2

    def tied(v: np.ndarray) -> np.ndarray:  # pairs of draws with equal v, copies of one arch included
        _, group = np.unique(v, return_inverse=True)
        w = np.zeros((len(c), group.max() + 1))
        np.add.at(w.T, group, c.T)
        return (w * (w - 1) / 2).sum(1)

    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt((n0 - tied(x)) * (n0 - tied(y)))


def bootstrap_ranking_stats(scores, acc, flops, n_resamples: int, seed: int = 0, level: float = 0.95) -> dict:
    """Percentile-bootstrap CIs of tau, rho, the within-decile tau and each budget's pick percentile, resampling
    the archs with replacement (deciles and budgets stay those of the full set)."""
    scores, acc, flops = (np.asarray(v, dtype=np.float64) for v in (scores, acc, flops))
    deciles, budget_values = flops_deciles(flops), budgets(flops)
    n = len(acc)
    idx = np.random.default_rng([seed, 2025]).integers(0, n, (n_resamples, n))
    counts = np.zeros((n_resamples, n), dtype=np.int32)
    np.add.at(counts, (np.arange(n_resamples)[:, None], idx), 1)
    dec = []
    for d in np.unique(deciles):
        m = deciles == d
        dec.append(_resampled_decile_taus(scores[m], acc[m], counts[:, m]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decile_tau = np.nanmean(np.stack(dec, 1), 1)
    draws = {"kendall_tau": [kendall_tau(scores[i], acc[i]) for i in idx],
             "spearman_rho": [spearman_rho(scores[i], acc[i]) for i in idx], "decile_tau": decile_tau}
    picks = []
    for b in budget_values:
        band = band_mask(flops, b)
        picks.append([budgeted_pick(scores[i], acc[i], band[i])["pick_percentile"] for i in idx])
    q = [50 * (1 - level), 50 * (1 + level)]

    def ci(v) -> list[float] | None:
        v = np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)
        v = v[np.isfinite(v)]
        return [float(c) for c in np.percentile(v, q)] if len(v) else None

    return {f"{k}_ci": ci(v) for k, v in draws.items()} | {"pick_percentile_ci": [ci(p) for p in picks],
                                                            "resamples": int(n_resamples), "level": level}


def arch_in_table(key: str, keys: tuple[str, ...], acc: np.ndarray, flops: np.ndarray, budget: float | None,
                  band: float = BAND) -> dict:
    """A searched arch's published accuracy, and its percentile among the archs of its budget's band (None
    without a FLOPs budget)."""
    i = keys.index(key)
    out = {"key": key, "acc": float(acc[i]), "flops": float(flops[i])}
    if budget is not None:
        m = band_mask(flops, budget, band)
        a = acc[m]
        out.update(band_n=int(m.sum()), percentile=float(100.0 * np.mean(a <= acc[i])) if len(a) else None,
                   band_best=float(a.max()) if len(a) else None, band_median=float(np.median(a)) if len(a) else None)
    return out
