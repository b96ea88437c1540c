"""The BN indicator: an op's score is the mean |gamma| of its last BN, a subnet's score the sum over its ops.

An indicator turns a trained supernet into something that scores subnets. The BN indicator is *additive*: it is an
L x N table of per-op scores, and a subnet's score is the sum of its ops' entries, which lets the exact solver find
the true optimum. Non-additive indicators (SPOS accuracy) score whole subnets through a callable; names map to
either kind in :mod:`bnnas.indicators.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from bnnas.core.supernet import Supernet


@dataclass(frozen=True)
class ScoreTable:
    """``scores[l, c]`` = score of choice c in layer l; NaN where layer l has no choice c."""

    scores: np.ndarray

    def of(self, choices) -> float:
        choices = np.asarray(choices)
        return float(self.scores[np.arange(len(choices)), choices].sum())

    def batch(self, pop: np.ndarray) -> np.ndarray:
        L, N = self.scores.shape
        return np.take(self.scores, pop + np.arange(0, L * N, N)).sum(1)  # flat gather: fast

    def ranks(self) -> np.ndarray:
        """Per-layer rank of each op (1 = best), concatenated over searchable layers (the early-bird rank vector)."""
        out = []
        for row in self.scores:
            valid = row[~np.isnan(row)]
            if len(valid) > 1:
                order = np.argsort(-valid, kind="stable")
                r = np.empty(len(valid), dtype=np.int64)
                r[order] = np.arange(1, len(valid) + 1)
                out.append(r)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@torch.no_grad()
def bn_score_table(supernet: Supernet) -> ScoreTable:
    """S(o_{n,l}) = mean_c |gamma_c| of the last BN of op n in layer l; BN-free candidates (identity) score 0."""
    space = supernet.space
    scores = np.full((len(space.layers), space.max_choices), np.nan)
    for li, ci, bn in supernet.indicator_bns():
        scores[li, ci] = 0.0 if bn is None else bn.weight.detach().abs().float().mean().item()
    return ScoreTable(scores)


class SubnetScorer(Protocol):
    """Scores a (B, L) int array of subnets (higher is better)."""

    def __call__(self, pop: np.ndarray) -> np.ndarray: ...
