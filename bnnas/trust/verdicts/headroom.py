"""Is there anything to find? Whether the random archs of a budget differ beyond seed noise.

With S >= 2 training seeds per arch the accuracies form a one-way layout (arch x seed). A one-way ANOVA
(``scipy.stats.f_oneway``) tests whether the arch means differ more than seed noise explains, and ICC(1), the
one-way random-effects intraclass correlation, estimates the share of the accuracy variance that lies between archs,
sigma_arch^2 / (sigma_arch^2 + sigma_seed^2). Archs drawn at random are a sample of the budget's archs, hence the
random-effects form. Its CI is the exact one from the F distribution (Searle 1971; Shrout & Fleiss 1979), not a
bootstrap: resampling 5 archs collapses to [0, 0] whenever the estimate is truncated at 0, hiding how much
between-arch variance a few seeds cannot rule out. When the archs do not differ, no search can be told apart from
random on this data.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05  # ANOVA level below which the archs count as different
CONFIDENCE = 0.95


@dataclass
class Headroom:
    archs: int
    runs: int  # accuracies in all (archs x seeds)
    f: float  # ANOVA F statistic (inf when every arch's seeds agree exactly and the archs do not)
    p: float  # its p-value
    icc: float  # ICC(1), truncated at 0: a negative estimate means no between-arch variance
    icc_ci: tuple[float, float]  # exact F-based interval at CONFIDENCE, within [0, 1]; NaN when nothing varies
    arch_sd: float  # std (ddof 1) of the arch means: the spread a search could exploit
    seed_sd: float  # pooled within-arch std, sqrt(MS_within): the seed noise
    differ: bool  # p < ALPHA: the archs differ beyond seed noise


def _groups(groups: Sequence[Sequence[float]]) -> list[np.ndarray]:
    out = [np.asarray(g, dtype=np.float64) for g in groups]
    if len(out) < 2 or any(len(g) < 2 for g in out):
        raise ValueError("needs at least 2 archs with at least 2 seeds each")
    return out


def mean_squares(groups: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """(MS_between, MS_within, k0) of a one-way layout; k0 is the group size, adjusted when sizes differ."""
    gs = _groups(groups)
    n = np.array([len(g) for g in gs], dtype=np.float64)
    a, total = len(gs), n.sum()
    grand = np.concatenate(gs).mean()
    ms_between = float((n * (np.array([g.mean() for g in gs]) - grand) ** 2).sum() / (a - 1))
    ms_within = float(sum(((g - g.mean()) ** 2).sum() for g in gs) / (total - a))
    k0 = float((total - (n ** 2).sum() / total) / (a - 1))
    return ms_between, ms_within, k0


def icc1(groups: Sequence[Sequence[float]]) -> float:
    """ICC(1) = (MSB - MSW) / (MSB + (k0 - 1) MSW), truncated at 0; 0 when every accuracy is the same."""
    msb, msw, k0 = mean_squares(groups)
    denom = msb + (k0 - 1) * msw
    return max(0.0, (msb - msw) / denom) if denom > 0 else 0.0


def anova(groups: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(F, p) of the one-way ANOVA; (0, 1) when every accuracy is the same, where scipy has no answer."""
    gs = _groups(groups)
    with warnings.catch_warnings():  # constant groups warn; the cases are handled below
        warnings.simplefilter("ignore")
        res = stats.f_oneway(*gs)
    f, p = float(res.statistic), float(res.pvalue)
    return (0.0, 1.0) if np.isnan(f) else (f, p)


def icc_interval(groups: Sequence[Sequence[float]], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """CI of :func:`icc1` from the F distribution (exact for normal arch effects and seed noise, equal seeds per
    arch), within [0, 1]; (1, 1) when every arch's seeds agree exactly but the archs do not, NaN when nothing
    varies."""
    gs = _groups(groups)
    msb, msw, k0 = mean_squares(gs)
    if msw == 0:
        return (1.0, 1.0) if msb > 0 else (math.nan, math.nan)
    df_between, df_within = len(gs) - 1, sum(len(g) for g in gs) - len(gs)
    q = 0.5 + confidence / 2
    f_low = msb / msw / stats.f.ppf(q, df_between, df_within)
    f_high = msb / msw * stats.f.ppf(q, df_within, df_between)
    low, high = (float(np.clip((f - 1) / (f + k0 - 1), 0.0, 1.0)) for f in (f_low, f_high))
    return low, high


def headroom(groups: Sequence[Sequence[float]], alpha: float = ALPHA) -> Headroom:
    """Do the archs (one sequence of per-seed accuracies each) differ beyond seed noise?"""
    gs = _groups(groups)
    f, p = anova(gs)
    _, msw, _ = mean_squares(gs)
    return Headroom(archs=len(gs), runs=sum(len(g) for g in gs), f=f, p=p, icc=icc1(gs),
                    icc_ci=icc_interval(gs), arch_sd=float(np.std([g.mean() for g in gs], ddof=1)),
                    seed_sd=float(np.sqrt(msw)), differ=bool(p < alpha))


def describe(h: Headroom) -> str:
    """One line: the test, the between-arch share and the two spreads, in percentage points."""
    ci = "n/a" if math.isnan(h.icc_ci[0]) else f"{h.icc_ci[0]:.2f}, {h.icc_ci[1]:.2f}"
    return (f"ANOVA over {h.archs} random archs x seeds: F = {h.f:.3g}, p = {h.p:.3g}; between-arch share of the "
            f"variance ICC(1) = {h.icc:.2f} [{ci}] ({100 * CONFIDENCE:.0f}% CI); "
            f"arch means spread {100 * h.arch_sd:.2f} pp (std), seed noise {100 * h.seed_sd:.2f} pp (std)")
