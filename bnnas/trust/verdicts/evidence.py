"""How far to trust one search run: did the supernet learn, do its op scores spread, would another seed agree.

Each check returns plain numbers plus a verdict sentence, so the console, report.md and summary.json say the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
from scipy.stats import kendalltau

from bnnas.core.space import is_parameter_free

LEARNED_FACTOR = 2.0  # below 2x chance the supernet counts as untrained
SPREAD_MIN = 0.05  # a layer's BN scores must differ by this much for its ranking to mean anything


@dataclass
class LearningCheck:
    final_train_acc: float | None
    chance: float
    learned: bool | None  # None: no training history (e.g. a supernet checkpoint without one)
    spread_layers: int  # searchable layers whose BN-carrying ops' scores differ by >= SPREAD_MIN
    searchable_layers: int
    warning: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def bn_free_mask(space) -> np.ndarray:
    """L x N: True where a candidate has no indicator BN (it scores 0 whatever the training did): a parameter-free
    op, unless the space puts a BN after every op."""
    mask = np.zeros((len(space.layers), space.max_choices), dtype=bool)
    for li, layer in enumerate(space.layers):
        for ci, op in enumerate(layer.choices):
            mask[li, ci] = is_parameter_free(op) and not space.bn_after_every_op
    return mask


def score_spread(scores: np.ndarray, bn_free: np.ndarray) -> np.ndarray:
    """Per searchable layer: max - min score over the candidates that have a BN (BN-free ones always score 0)."""
    out = []
    for row, free in zip(scores, bn_free):
        vals = row[~np.isnan(row) & ~free]
        if np.sum(~np.isnan(row)) > 1:
            out.append(float(vals.max() - vals.min()) if len(vals) > 1 else 0.0)
    return np.array(out)


def check_learning(history: list[dict], num_classes: int, scores: np.ndarray, bn_free: np.ndarray) -> LearningCheck:
    chance = 1.0 / num_classes
    acc = float(history[-1]["train_acc"]) if history else None
    learned = None if acc is None else acc >= LEARNED_FACTOR * chance
    spread = score_spread(scores, bn_free)
    warning = None
    if learned is False:
        warning = (f"WARNING: the supernet did not learn (final train accuracy {100 * acc:.1f}% vs {100 * chance:.1f}% "
                   "chance): this search ran on an untrained supernet, so its architecture reflects the budget and "
                   "the seed, not the data.")
    elif len(spread) and np.mean(spread >= SPREAD_MIN) < 0.5:
        warning = (f"WARNING: op scores barely differ (spread >= {SPREAD_MIN} in only {int(np.sum(spread >= SPREAD_MIN))}"
                   f" of {len(spread)} searchable layers): the ranking inside most layers is close to noise.")
    return LearningCheck(acc, chance, learned, int(np.sum(spread >= SPREAD_MIN)), len(spread), warning)


def layer_taus(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> list[float]:
    """Kendall tau-b of two L x N score tables, layer by layer, over the candidates both have (and ``mask`` keeps);
    a layer where either side is constant (a tie everywhere) counts as tau 0."""
    taus = []
    for l, (ra, rb) in enumerate(zip(a, b)):
        keep = ~np.isnan(ra) & ~np.isnan(rb)
        if mask is not None:
            keep &= mask[l]
        if keep.sum() < 2 or np.sum(~np.isnan(ra)) < 2:
            continue
        t = kendalltau(ra[keep], rb[keep]).statistic
        taus.append(0.0 if np.isnan(t) else float(t))
    return taus


@dataclass
class SeedAgreement:
    runs: int
    mean_tau: float  # per-layer tau over all candidates, averaged over layers and run pairs
    mean_tau_bn_ops: float  # the same over BN-carrying candidates only (identity's constant 0 left out)
    arch_agreement: float  # fraction of searchable layers where two runs' archs pick the same op, over pairs
    best_op_agreement: float  # fraction of searchable layers where two runs' top-scored op is the same, over pairs
    stable: bool
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def seed_agreement(tables: list[np.ndarray], archs: list[list[int]], bn_free: np.ndarray,
                   tau_min: float = 0.5, agree_min: float = 2 / 3) -> SeedAgreement:
    """Pairwise agreement of runs that differ only in their seed."""
    if len(tables) < 2 or len(tables) != len(archs):
        raise ValueError("need at least two runs, each with a score table and an arch")
    searchable = np.array([np.sum(~np.isnan(r)) > 1 for r in tables[0]])
    taus, taus_bn, arch_ag, best_ag = [], [], [], []
    for i, j in combinations(range(len(tables)), 2):
        taus.append(np.mean(layer_taus(tables[i], tables[j])))
        taus_bn.append(np.mean(layer_taus(tables[i], tables[j], ~bn_free)))
        ai, aj = np.asarray(archs[i])[searchable], np.asarray(archs[j])[searchable]
        arch_ag.append(float(np.mean(ai == aj)))
        bi = np.nanargmax(tables[i][searchable], axis=1)
        bj = np.nanargmax(tables[j][searchable], axis=1)
        best_ag.append(float(np.mean(bi == bj)))
    tau, tau_bn, ag = float(np.mean(taus)), float(np.mean(taus_bn)), float(np.mean(arch_ag))
    stable = tau >= tau_min and ag >= agree_min
    verdict = (f"seeds agree: mean per-layer tau {tau:.2f}, archs share {100 * ag:.0f}% of their layers"
               if stable else
               f"seed-dependent: mean per-layer tau {tau:.2f} (BN ops only {tau_bn:.2f}), archs share only "
               f"{100 * ag:.0f}% of their layers; treat one run's architecture as one sample, not the answer")
    return SeedAgreement(len(tables), tau, tau_bn, ag, float(np.mean(best_ag)), stable, verdict)
