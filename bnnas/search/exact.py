"""Exact search: max sum of per-layer scores s.t. sum of per-layer costs <= budget (a multiple-choice knapsack).

Costs are large integers (MACs), so a DP over cost values is out; instead we sweep layers keeping the Pareto front
of (cost, score) partial paths, pruning any partial path that cannot finish under budget even with the cheapest ops
or cannot beat a known feasible solution even with the best ops. The result is the true optimum of the indicator.
"""

from __future__ import annotations

import time

import numpy as np

from ..flops import CostTable
from ..indicator import ScoreTable
from .common import SearchResult, check_budget


def _greedy_lower_bound(scores: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """Score of a feasible subnet: start from the cheapest ops, upgrade by best score-per-cost while it fits."""
    choice = np.nanargmin(np.where(np.isfinite(costs), costs, np.nan), axis=1)
    rows = np.arange(len(choice))
    spent = costs[rows, choice].sum()
    improved = True
    while improved:
        improved = False
        gain = scores - scores[rows, choice][:, None]
        extra = costs - costs[rows, choice][:, None]
        ok = np.isfinite(costs) & (gain > 0) & (spent + extra <= budget)
        if ok.any():
            ratio = np.where(ok, gain / np.maximum(np.nan_to_num(extra, posinf=1.0), 1e-9), -np.inf)
            l, c = np.unravel_index(np.argmax(ratio), ratio.shape)
            spent += extra[l, c]
            choice[l] = c
            improved = True
    return float(scores[rows, choice].sum())


def exact_search(table: ScoreTable, cost: CostTable, budget: float) -> SearchResult:
    check_budget(cost, budget)
    t0 = time.perf_counter()
    scores = np.where(np.isfinite(cost.per_op), np.nan_to_num(table.scores, nan=-np.inf), -np.inf)
    costs = cost.per_op
    rem = budget - cost.base
    L = len(costs)
    finite = np.where(np.isfinite(costs), costs, np.inf)
    min_suffix = np.append(np.cumsum(finite.min(1)[::-1])[::-1], 0.0)
    max_suffix = np.append(np.cumsum(scores.max(1)[::-1])[::-1], 0.0)
    lower = _greedy_lower_bound(scores, costs, rem) - 1e-9
    f_cost, f_score = np.zeros(1), np.zeros(1)
    parents, picks = [], []
    explored = 0
    for l in range(L):
        valid = np.flatnonzero(np.isfinite(costs[l]))
        c = (f_cost[:, None] + costs[l, valid][None, :]).ravel()
        s = (f_score[:, None] + scores[l, valid][None, :]).ravel()
        explored += len(c)
        keep = (c + min_suffix[l + 1] <= rem) & (s + max_suffix[l + 1] >= lower)
        idx = np.flatnonzero(keep)
        order = idx[np.lexsort((-s[idx], c[idx]))]  # by cost, then best score first
        s_sorted = s[order]
        best_before = np.maximum.accumulate(np.concatenate([[-np.inf], s_sorted[:-1]]))
        order = order[s_sorted > best_before]  # Pareto: strictly better than anything cheaper
        f_cost, f_score = c[order], s[order]
        parents.append(order // len(valid))
        picks.append(valid[order % len(valid)])
    i = int(np.argmax(f_score))
    best_score = float(f_score[i])
    choices = np.empty(L, dtype=np.int64)
    for l in range(L - 1, -1, -1):
        choices[l] = picks[l][i]
        i = parents[l][i]
    return SearchResult("exact", choices, best_score, cost.of(choices), explored, time.perf_counter() - t0)
