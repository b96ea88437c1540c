"""The paper's evolutionary search, as in the official SPOS code: keep the top-k, breed mutations and crossovers
from them, fill up the population with random subnets, repeat.

Defaults follow the official code: population 50, top-k 10, 25 mutations + 25 crossovers per iteration, mutation
probability 0.1, 20 iterations (1000 subnets scored). Children are tried first-come, up to ``max_tries`` tries per
wanted child; one that is over budget or was seen before is skipped. The initial population and the refill are
uniform over the subnets within budget (:class:`FeasibleSampler`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bnnas.core.flops import CostTable
from bnnas.search.common import FeasibleSampler, SearchResult, budget_limit, check_budget, subnet_keys, take_unseen


@dataclass(frozen=True)
class EvolutionConfig:
    """The evolutionary search's settings; the defaults are the official SPOS code's (the CLI's flags read them)."""

    population: int = 50  # subnets scored per generation
    topk: int = 10  # parents kept across generations
    iterations: int = 20  # generations
    mutations: int = 25  # mutated children wanted per generation
    crossovers: int = 25  # crossed-over children wanted per generation
    mutation_prob: float = 0.1  # chance that a mutated child's layer gets a new uniform op
    max_tries: int = 10  # candidates drawn per wanted child before giving up on it

    @classmethod
    def for_population(cls, population: int, iterations: int) -> EvolutionConfig:
        """The paper's split of a generation (50 = 25 mutations + 25 crossovers, top-10), kept for any population."""
        half = population // 2
        return cls(population=population, topk=min(10, population), iterations=iterations, mutations=half,
                   crossovers=population - half)


def evolutionary_search(scorer: Callable[[np.ndarray], np.ndarray], cost: CostTable, budget: float,
                        n_choices: np.ndarray, config: EvolutionConfig = EvolutionConfig(),
                        seed: int = 0) -> SearchResult:
    """The best subnet within ``budget`` found by evolving ``config.population`` subnets for ``config.iterations``
    generations, drawing from ``seed``."""
    check_budget(cost, budget)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_choices = np.asarray(n_choices, dtype=np.int64)
    limit = budget_limit(budget)
    seen: set = set()
    feasible = FeasibleSampler(n_choices, cost, budget)

    def mutate(top: np.ndarray, n: int) -> np.ndarray:
        children = top[rng.integers(len(top), size=n)]  # fancy indexing copies the parents
        r, c = np.nonzero(rng.random(children.shape) < config.mutation_prob)
        children[r, c] = rng.integers(n_choices[c])  # a uniform op of that layer
        return children

    def crossover(top: np.ndarray, n: int) -> np.ndarray:
        a, b = top[rng.integers(len(top), size=n)], top[rng.integers(len(top), size=n)]
        return np.where(rng.random(a.shape) < 0.5, a, b)

    def breed(make: Callable[[np.ndarray, int], np.ndarray], top: np.ndarray, n: int) -> list[np.ndarray]:
        """The first n children that are new and within budget out of max_tries * n tries (drawn in one batch)."""
        cands = make(top, config.max_tries * n)
        return take_unseen(cands, subnet_keys(cands, feasible.base), seen, n, lambda rows: cost.batch(rows) <= limit)

    cands = feasible.sample(rng, config.population, seen)
    history_pop, history_score = [], []
    top, top_score = cands[:0], np.zeros(0)
    for it in range(config.iterations):
        scores = np.asarray(scorer(cands), dtype=np.float64)
        history_pop.append(cands)
        history_score.append(scores)
        pool, pool_score = np.concatenate([top, cands]), np.concatenate([top_score, scores])
        keep = np.argsort(-pool_score, kind="stable")[:config.topk]
        top, top_score = pool[keep], pool_score[keep]
        if it == config.iterations - 1:
            break
        new = breed(mutate, top, config.mutations) + breed(crossover, top, config.crossovers)
        refill = feasible.sample(rng, config.population - len(new), seen)
        cands = np.concatenate([np.stack(new), refill]) if new else refill
        if len(cands) == 0:
            break
    pop, sc = np.concatenate(history_pop), np.concatenate(history_score)
    best = top[0]
    return SearchResult("evolution", best, float(top_score[0]), cost.of(best), len(pop), time.perf_counter() - t0,
                        np.stack([cost.batch(pop), sc], 1))
