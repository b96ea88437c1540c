"""The paper's evolutionary search (SPOS loop): top-k parents, mutation + crossover, random refill.

Defaults follow the official code: population 50, top-k 10, 25 mutations + 25 crossovers per generation, mutation
probability 0.1, 20 generations (about 1000 subnets). Over-budget and already-seen candidates are rejected.
Candidates are generated and scored in vectorised batches, so a cheap indicator searches 1000 subnets in milliseconds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from bnnas.core.flops import CostTable
from bnnas.search.common import FeasibleSampler, SearchResult, budget_limit, check_budget, subnet_keys, take_unseen


def _take_new(cands: np.ndarray, cost: CostTable, budget: float, seen: set, n: int, base: int) -> list[np.ndarray]:
    """First n candidates (in order) that are new and within budget; marks them seen."""
    return take_unseen(cands, subnet_keys(cands, base), seen, n, lambda rows: cost.batch(rows) <= budget_limit(budget))


def evolutionary_search(
    scorer: Callable[[np.ndarray], np.ndarray],
    cost: CostTable,
    budget: float,
    n_choices: np.ndarray,
    population: int = 50,
    topk: int = 10,
    iterations: int = 20,
    mutations: int = 25,
    crossovers: int = 25,
    mutation_prob: float = 0.1,
    seed: int = 0,
    max_tries: int = 10,
) -> SearchResult:
    check_budget(cost, budget)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    L = len(n_choices)
    seen: set = set()
    feasible = FeasibleSampler(n_choices, cost, budget)  # uniform over the feasible subnets, built once
    cands = feasible.sample(rng, population, seen)
    all_pop, all_score = [], []
    top = np.zeros((0, L), dtype=np.int64)
    top_score = np.zeros(0)
    last_made = [0, 0]  # children each kind needed last generation: the next first chunk starts that large
    for it in range(iterations):
        scores = np.asarray(scorer(cands), dtype=np.float64)
        all_pop.append(cands)
        all_score.append(scores)
        pool = np.concatenate([top, cands])
        pool_score = np.concatenate([top_score, scores])
        order = np.argsort(-pool_score, kind="stable")[:topk]
        top, top_score = pool[order], pool_score[order]
        if it == iterations - 1:
            break
        # Children are drawn i.i.d. from the top-k and taken first-come while new and under budget, at most
        # max_tries * 4 * n of them per kind; they are generated in doubling chunks, the first as large as what the
        # previous generation needed (at least 8n), to keep the number of numpy calls small when most children are
        # rejected (as the population converges). Chunking does not change which children are accepted.
        new: list[np.ndarray] = []
        made, size, cap = 0, max(8 * mutations, last_made[0]), max_tries * 4 * mutations
        while len(new) < mutations and made < cap:  # mutations: each layer resampled with probability mutation_prob
            size = min(size, cap - made)
            made += size
            children = top[rng.integers(len(top), size=size)]  # a fresh array (fancy indexing copies)
            r, c = np.nonzero(rng.random(children.shape, dtype=np.float32) < mutation_prob)
            children[r, c] = (rng.random(len(r)) * n_choices[c]).astype(np.int64)  # uniform op, as sample_uniform
            new += _take_new(children, cost, budget, seen, mutations - len(new), feasible.base)
            size *= 2
        n_mut, last_made[0] = len(new), made
        made, size, cap = 0, max(8 * crossovers, last_made[1]), max_tries * 4 * crossovers
        while len(new) - n_mut < crossovers and made < cap:  # crossovers: each layer from one of two random parents
            size = min(size, cap - made)
            made += size
            a = top[rng.integers(len(top), size=size)]
            b = top[rng.integers(len(top), size=size)]
            coin = np.unpackbits(np.frombuffer(rng.bytes((a.size + 7) // 8), np.uint8), count=a.size)  # fair bits
            children = np.where(coin.reshape(a.shape).view(bool), a, b)
            new += _take_new(children, cost, budget, seen, crossovers - (len(new) - n_mut), feasible.base)
            size *= 2
        last_made[1] = made
        refill = feasible.sample(rng, population - len(new), seen)
        cands = np.concatenate([np.stack(new), refill]) if new else refill
        if len(cands) == 0:
            break
    pop = np.concatenate(all_pop)
    sc = np.concatenate(all_score)
    best = top[0]
    return SearchResult("evolution", best, float(top_score[0]), cost.of(best), len(pop), time.perf_counter() - t0,
                        np.stack([cost.batch(pop), sc], 1))
