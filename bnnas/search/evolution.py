"""The paper's evolutionary search (SPOS loop): top-k parents, mutation + crossover, random refill.

Defaults follow the official code: population 50, top-k 10, 25 mutations + 25 crossovers per generation, mutation
probability 0.1, 20 generations (about 1000 subnets). Over-budget and already-seen candidates are rejected.
Candidates are generated and scored in vectorised batches, so a cheap indicator searches 1000 subnets in milliseconds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..flops import CostTable
from .common import SearchResult, check_budget, sample_under_budget, sample_uniform


def _take_new(cands: np.ndarray, cost: CostTable, budget: float, seen: set, n: int) -> list[np.ndarray]:
    cands = cands[cost.batch(cands) <= budget]
    out = []
    for row in cands:
        key = row.tobytes()
        if key not in seen:
            seen.add(key)
            out.append(row)
            if len(out) == n:
                break
    return out


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
    cands = sample_under_budget(rng, n_choices, cost, budget, population, seen)
    all_pop, all_score = [], []
    top = np.zeros((0, L), dtype=np.int64)
    top_score = np.zeros(0)
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
        new: list[np.ndarray] = []
        for _ in range(max_tries):  # mutations: each layer resampled with probability mutation_prob
            if len(new) >= mutations:
                break
            parents = top[rng.integers(len(top), size=4 * mutations)]
            mask = rng.random(parents.shape) < mutation_prob
            children = np.where(mask, sample_uniform(rng, n_choices, len(parents)), parents)
            new += _take_new(children, cost, budget, seen, mutations - len(new))
        n_mut = len(new)
        for _ in range(max_tries):  # crossovers: each layer from one of two random parents
            if len(new) - n_mut >= crossovers:
                break
            a = top[rng.integers(len(top), size=4 * crossovers)]
            b = top[rng.integers(len(top), size=4 * crossovers)]
            children = np.where(rng.random(a.shape) < 0.5, a, b)
            new += _take_new(children, cost, budget, seen, crossovers - (len(new) - n_mut))
        refill = sample_under_budget(rng, n_choices, cost, budget, population - len(new), seen)
        cands = np.concatenate([np.stack(new), refill]) if new else refill
        if len(cands) == 0:
            break
    pop = np.concatenate(all_pop)
    sc = np.concatenate(all_score)
    best = top[0]
    return SearchResult("evolution", best, float(top_score[0]), cost.of(best), len(pop), time.perf_counter() - t0,
                        np.stack([cost.batch(pop), sc], 1))
