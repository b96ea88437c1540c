"""How far a ground-truth table can be trusted before any indicator is scored against it.

* seed agreement: tau between two training seeds' accuracies of the same archs (the ceiling of any indicator's tau),
  overall and inside the table's FLOPs band;
* band headroom: do the band's archs differ beyond seed noise at all (ANOVA, ICC(1))? If not, no indicator can pick
  among them and "which arch of this budget" has no answer on this data;
* agreement with a reference table of the same keys (ours on Fashion-MNIST against NAS-Bench-Macro on CIFAR-10).
"""

from __future__ import annotations

import numpy as np

from bnnas.benchmarks import BenchmarkTable
from bnnas.trust.verdicts.headroom import headroom
from bnnas.trust.rank_stats import bootstrap_ci, kendall_tau, seed_agreement


def seeds_of(table: BenchmarkTable, mask: np.ndarray) -> list[list[float]]:
    """Each masked key's per-seed accuracies (missing seeds dropped)."""
    return [[float(a) for a in row if np.isfinite(a)] for row in table.accs[mask]]


def band_headroom(table: BenchmarkTable) -> dict | None:
    """ANOVA and ICC(1) over the band's archs x seeds; None without a band of 2+ archs with 2+ seeds."""
    runs = seeds_of(table, table.band)
    if len(runs) < 2 or min(len(r) for r in runs) < 2:
        return None
    h = headroom(runs)
    return {"archs": h.archs, "runs": h.runs, "anova_f": h.f, "anova_p": h.p, "icc": h.icc,
            "icc_ci": list(h.icc_ci), "arch_sd": h.arch_sd, "seed_sd": h.seed_sd, "differ": h.differ,
            "arch_mean_range": float(np.ptp([np.mean(r) for r in runs]))}


def reference_agreement(table: BenchmarkTable, reference: BenchmarkTable, resamples: int, seed: int) -> dict:
    """tau between the two tables' mean accuracies over the keys both hold, overall and inside the band."""
    index = {k: i for i, k in enumerate(reference.keys)}
    rows = np.array([k in index for k in table.keys])
    ours = table.mean_acc[rows]
    theirs = np.array([reference.mean_acc[index[k]] for k, ok in zip(table.keys, rows) if ok])
    out = {"reference": reference.info.name, "dataset": reference.info.dataset, "keys": int(rows.sum()),
           "kendall_tau": kendall_tau(ours, theirs), **bootstrap_ci([(ours, theirs)], resamples, seed)}
    band = table.band[rows]
    if band.sum() >= 3:
        out["band"] = {"keys": int(band.sum()), "kendall_tau": kendall_tau(ours[band], theirs[band]),
                       **bootstrap_ci([(ours[band], theirs[band])], resamples, seed)}
    return out


def table_quality(table: BenchmarkTable, reference: BenchmarkTable | None, resamples: int, seed: int = 0) -> dict:
    everything = np.ones(len(table), dtype=bool)
    out = {"seed_agreement": seed_agreement(seeds_of(table, everything), resamples, seed)}
    if table.band.any():
        out["band_seed_agreement"] = seed_agreement(seeds_of(table, table.band), resamples, seed)
        out["band_headroom"] = band_headroom(table)
    if reference is not None:
        out["reference_agreement"] = reference_agreement(table, reference, resamples, seed)
    return out
