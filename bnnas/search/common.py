"""What every search shares: budget checks, random valid subnets, and the result record."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BNNASError
from ..flops import CostTable
from ..space import SearchSpace


@dataclass
class SearchResult:
    method: str
    choices: np.ndarray  # (L,) best subnet
    score: float
    cost: float
    evaluated: int  # subnets scored
    seconds: float
    history: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (n, 2): cost, score of scored subnets

    def summary(self) -> dict:
        return {"method": self.method, "score": self.score, "cost": self.cost, "evaluated": self.evaluated,
                "seconds": self.seconds}


def num_choices(space: SearchSpace) -> np.ndarray:
    return np.array([len(l.choices) for l in space.layers], dtype=np.int64)


def check_budget(cost: CostTable, budget: float, unit: str = "MFLOPs", scale: float = 1e6) -> None:
    """Refuse budgets no subnet can meet, naming the smallest feasible one."""
    if not np.isfinite(budget) or budget <= 0:
        raise BNNASError(f"budget must be a positive number, got {budget / scale:g} {unit}")
    if budget < cost.min_total:
        raise BNNASError(
            f"no subnet fits a budget of {budget / scale:.2f} {unit}: the smallest subnet of this space costs "
            f"{cost.min_total / scale:.2f} {unit} (the largest {cost.max_total / scale:.2f})"
        )


def sample_uniform(rng: np.random.Generator, n_choices: np.ndarray, n: int) -> np.ndarray:
    """(n, L) subnets with each layer's op drawn uniformly."""
    return (rng.random((n, len(n_choices))) * n_choices[None, :]).astype(np.int64)


def sample_under_budget(rng: np.random.Generator, n_choices: np.ndarray, cost: CostTable, budget: float, n: int,
                        seen: set | None = None, max_draws: int = 1_000_000) -> np.ndarray:
    """Up to n distinct random subnets with cost <= budget (and not in ``seen``, which is updated).

    Gives up after ``max_draws`` uniform draws: under a tight budget most uniform subnets are too large.
    """
    seen = set() if seen is None else seen
    out: list[np.ndarray] = []
    draws = 0
    while len(out) < n and draws < max_draws:
        batch = sample_uniform(rng, n_choices, max(4 * n, 4096))
        draws += len(batch)
        batch = batch[cost.batch(batch) <= budget]
        for row in batch:
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                out.append(row)
                if len(out) == n:
                    break
    return np.stack(out) if out else np.zeros((0, len(n_choices)), dtype=np.int64)
