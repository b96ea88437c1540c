"""Exact search: max sum of per-layer scores s.t. sum of per-layer costs <= budget (a multiple-choice knapsack).

Costs are large integers (MACs) or float seconds (latency), so a DP over cost values is out; instead we sweep layers
keeping the Pareto front of (cost, score) partial paths, pruning any partial path that cannot finish under budget even
with the cheapest ops or cannot reach a known feasible solution (the greedy incumbent) even with the best ops. The
result is the true optimum of the indicator.

Floats: feasibility is ``cost <= budget_limit(budget)`` (one relative tolerance shared with ``check_budget``), so a
budget equal to some subnet's cost admits that subnet whatever order its costs are summed in. The score bound keeps
paths within a tolerance relative to the score magnitude, so near-ties survive rounding at any score scale, and the
incumbent is kept as a real subnet, so the search always has an answer.
"""

from __future__ import annotations

import time

import numpy as np

from bnnas.core.flops import CostTable
from bnnas.indicators.bn import ScoreTable
from bnnas.search.common import SearchResult, budget_limit, check_budget

# Score sums of ~L terms are off by ~L * 1.1e-16 of the score magnitude; paths within this relative margin of the
# incumbent are kept so that rounding never prunes the optimum.
_TIE_RTOL = 1e-12


def _greedy_incumbent(scores: np.ndarray, costs: np.ndarray, rem_limit: float) -> np.ndarray:
    """A subnet that fits: start from the cheapest ops, upgrade by best score gain per extra cost while it fits."""
    L = len(costs)
    rows = np.arange(L)
    finite = np.isfinite(costs)
    c = np.where(finite, costs, np.inf)
    cheapest = c == c.min(1, keepdims=True)
    key = np.where(cheapest, scores, -np.inf)
    choice = np.argmax(key, axis=1)
    none_scored = ~np.isfinite(key.max(1))  # argmax would land on column 0, which need not be a cheapest op
    choice[none_scored] = np.argmax(cheapest[none_scored], axis=1)
    tiny = np.finfo(np.float64).tiny
    while True:
        spent = c[rows, choice].sum()  # re-summed each round: no drift from accumulating extras
        with np.errstate(over="ignore", invalid="ignore"):  # -inf scores give NaN gains (never > 0) and inf ratios
            gain = scores - scores[rows, choice][:, None]
            extra = c - c[rows, choice][:, None]
            ok = finite & (gain > 0) & (spent + extra <= rem_limit)
            if not ok.any():
                return choice
            ratio = np.where(ok, gain / np.maximum(extra, tiny), -np.inf)
        l, k = np.unravel_index(np.argmax(ratio), ratio.shape)
        choice[l] = k


def exact_search(table: ScoreTable, cost: CostTable, budget: float) -> SearchResult:
    check_budget(cost, budget)
    t0 = time.perf_counter()
    costs = cost.per_op
    scores = np.where(np.isfinite(costs), np.nan_to_num(table.scores, nan=-np.inf), -np.inf)
    rem_limit = budget_limit(budget) - cost.base
    L = len(costs)
    rows = np.arange(L)
    finite = np.where(np.isfinite(costs), costs, np.inf)
    min_suffix = np.append(np.cumsum(finite.min(1)[::-1])[::-1], 0.0)
    max_suffix = np.append(np.cumsum(scores.max(1)[::-1])[::-1], 0.0)
    incumbent = _greedy_incumbent(scores, costs, rem_limit)
    inc_score = scores[rows, incumbent].sum()
    magnitude = np.abs(np.where(np.isfinite(scores), scores, 0.0)).max(1).sum()
    floor = inc_score - _TIE_RTOL * magnitude  # a path whose best completion is below this cannot win
    f_cost, f_score = np.zeros(1), np.zeros(1)
    parents, picks = [], []
    explored = 0
    for l in range(L):
        valid = np.flatnonzero(np.isfinite(costs[l]))
        c = (f_cost[:, None] + costs[l, valid][None, :]).ravel()
        s = (f_score[:, None] + scores[l, valid][None, :]).ravel()
        explored += len(c)
        keep = (c + min_suffix[l + 1] <= rem_limit) & (s + max_suffix[l + 1] >= floor)
        idx = np.flatnonzero(keep)
        order = idx[np.lexsort((-s[idx], c[idx]))]  # by cost, then best score first
        s_sorted = s[order]
        best_before = np.maximum.accumulate(np.concatenate([[-np.inf], s_sorted[:-1]]))
        order = order[s_sorted > best_before]  # Pareto: strictly better than anything cheaper
        f_cost, f_score = c[order], s[order]
        parents.append(order // len(valid))
        picks.append(valid[order % len(valid)])
        if not len(order):
            break  # nothing beats the incumbent
    choices = incumbent
    if len(f_score) and len(parents) == L:
        i = int(np.argmax(f_score))
        found = np.empty(L, dtype=np.int64)
        for l in range(L - 1, -1, -1):
            found[l] = picks[l][i]
            i = parents[l][i]
        # both summed the same way, so the comparison is not decided by summation order
        fs, fc = scores[rows, found].sum(), costs[rows, found].sum()
        if fs > inc_score or (fs == inc_score and fc < costs[rows, incumbent].sum()):
            choices = found
    score = float(scores[rows, choices].sum())
    return SearchResult("exact", choices.astype(np.int64), score, cost.of(choices), explored,
                        time.perf_counter() - t0)
