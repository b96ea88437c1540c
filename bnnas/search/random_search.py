"""Random search: the baseline every NAS method should beat."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from bnnas.core.flops import CostTable
from bnnas.search.common import SearchResult, check_budget, sample_under_budget


def random_search(scorer: Callable[[np.ndarray], np.ndarray], cost: CostTable, budget: float, n_choices: np.ndarray,
                  samples: int = 1000, seed: int = 0) -> SearchResult:
    check_budget(cost, budget)
    t0 = time.perf_counter()
    pop = sample_under_budget(np.random.default_rng(seed), n_choices, cost, budget, samples)
    scores = np.asarray(scorer(pop), dtype=np.float64)
    i = int(np.argmax(scores))
    return SearchResult("random", pop[i], float(scores[i]), cost.of(pop[i]), len(pop), time.perf_counter() - t0,
                        np.stack([cost.batch(pop), scores], 1))
