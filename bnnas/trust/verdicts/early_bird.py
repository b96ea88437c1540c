"""Early-bird analysis: when does the per-layer op ranking stop changing?

Each epoch's op scores give a rank vector (rank of every op inside its layer, concatenated over searchable layers).
Two epochs are compared by the L2 distance of their rank vectors, normalised by the largest possible distance (every
layer's order reversed) into a similarity in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnnas.indicators.bn import ScoreTable


def max_rank_distance(scores: np.ndarray) -> float:
    total = 0.0
    for row in scores:
        n = int((~np.isnan(row)).sum())
        if n > 1:
            r = np.arange(1, n + 1)
            total += float(((r - r[::-1]) ** 2).sum())
    return float(np.sqrt(total))


def similarity_matrix(score_tables: list[np.ndarray]) -> np.ndarray:
    """(E, E) similarity 1 - ||r_i - r_j|| / max between every pair of epochs."""
    if not score_tables:
        return np.zeros((0, 0))
    ranks = np.stack([ScoreTable(s).ranks() for s in score_tables]).astype(np.float64)
    dmax = max_rank_distance(score_tables[0]) or 1.0
    d = np.sqrt(((ranks[:, None, :] - ranks[None, :, :]) ** 2).sum(-1))
    return 1.0 - d / dmax


def consecutive_similarity(score_tables: list[np.ndarray]) -> np.ndarray:
    """Similarity of epoch e to epoch e-1, for e = 2..E."""
    sim = similarity_matrix(score_tables)
    return np.array([sim[i, i - 1] for i in range(1, len(sim))])


def settle_epoch(consecutive: np.ndarray, threshold: float = 0.95, patience: int = 3) -> int | None:
    """First epoch (1-based) from which ``patience`` consecutive comparisons all reach ``threshold``; None if never."""
    run = 0
    for i, s in enumerate(consecutive):
        run = run + 1 if s >= threshold else 0
        if run >= patience:
            return i + 2 - patience  # consecutive[i] compares epoch i+2 with i+1
    return None


@dataclass
class EarlyBirdStopper:
    """Stops supernet training once the ranking has settled (``--early-bird``)."""

    threshold: float = 0.95
    patience: int = 3
    min_epochs: int = 2
    settled_at: int | None = None

    def update(self, score_tables: list[np.ndarray]) -> bool:
        if len(score_tables) < max(self.min_epochs, self.patience + 1):
            return False
        e = settle_epoch(consecutive_similarity(score_tables), self.threshold, self.patience)
        if e is not None:
            self.settled_at = e
            return True
        return False
