"""What every search shares: budget checks, random valid subnets, and the result record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bnnas.errors import BNNASError
from bnnas.core.flops import CostTable
from bnnas.core.space import SearchSpace


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


# Relative slack of every budget comparison. The same per-op costs summed in another order differ by about
# L * 1.1e-16 of the total (~1e-14 for 100 layers), so 1e-12 makes feasibility independent of summation order while
# staying far below one unit of any integer cost (0.0005 MACs at a 470e6 budget).
BUDGET_RTOL = 1e-12


def budget_limit(budget: float) -> float:
    """The largest total cost that fits ``budget``: a subnet is feasible iff ``cost <= budget_limit(budget)``.

    Every feasibility test (``check_budget``, the exact solver, the EA and the samplers) compares against this one threshold.
    """
    return float(budget) + abs(float(budget)) * BUDGET_RTOL


def check_budget(cost: CostTable, budget: float, unit: str = "MFLOPs", scale: float = 1e6) -> None:
    """Refuse budgets no subnet can meet, naming the smallest feasible one."""
    if not np.isfinite(budget) or budget <= 0:
        raise BNNASError(f"budget must be a positive number, got {budget / scale:g} {unit}")
    if not cost.min_total <= budget_limit(budget):
        raise BNNASError(
            f"no subnet fits a budget of {budget / scale:.2f} {unit}: the smallest subnet of this space costs "
            f"{cost.min_total / scale:.2f} {unit} (the largest {cost.max_total / scale:.2f})"
        )


def subnet_keys(rows: np.ndarray, base: int) -> np.ndarray | list:
    """Keys of (n, L) subnets for "already seen" sets: an int64 array (base-``base`` digits, one per row) when that
    fits in 63 bits, else a list of the rows' bytes. A ``seen`` set holds the Python forms (``int`` / ``bytes``); use
    the same ``base`` (the largest choice count) for every key in a set."""
    L = rows.shape[1]
    if L * np.log2(max(base, 2)) < 63:
        return rows @ (np.int64(max(base, 2)) ** np.arange(L, dtype=np.int64))
    return [r.tobytes() for r in rows]


def take_unseen(rows: np.ndarray, keys: np.ndarray | list, seen: set, n: int,
                fits: Callable[[np.ndarray], np.ndarray] | None = None) -> list[np.ndarray]:
    """The first n rows, in order, that are new (key not in ``seen`` nor earlier in ``rows``) and, if ``fits`` is
    given, pass ``fits(rows) -> bool mask``; their keys are added to ``seen``.

    Same result as scanning row by row, but only each key's first occurrence is looked at and ``fits`` runs on the
    new rows only: late in a search most candidates are repeats, so this skips most of the work.
    """
    if isinstance(keys, np.ndarray):
        uniq, first = np.unique(keys, return_index=True)
        order = np.argsort(first)
        idx_all, keys_all = first[order].tolist(), uniq[order].tolist()
        fresh_needed = False  # np.unique already dropped repeats within rows
    else:
        idx_all, keys_all, fresh_needed = range(len(keys)), keys, True
    fresh: set = set()
    chosen, chosen_keys = [], []
    for i, k in zip(idx_all, keys_all):
        if k not in seen and (not fresh_needed or k not in fresh):
            if fresh_needed:
                fresh.add(k)
            chosen.append(i)
            chosen_keys.append(k)
    idx = np.asarray(chosen, dtype=np.int64)
    pos = np.arange(len(idx))
    if fits is not None and len(idx):
        pos = np.flatnonzero(fits(rows[idx]))
    pos = pos[:n]
    for j in pos.tolist():
        seen.add(chosen_keys[j])
    return list(rows[idx[pos]])


class FeasibleSampler:
    """Exactly uniform random subnets among those with ``cost <= budget``, without drawing ~1000 uniform subnets per
    accepted one (at 470 MFLOPs in the paper's space only ~1 in 700 uniform subnets fits).

    Costs are shifted by each layer's cheapest op and rounded *down* to a grid of ``grid`` steps over the remaining
    budget. A dynamic program counts, per layer and remaining grid budget, the completions that fit the *rounded*
    costs; drawing each layer's op in proportion to those counts samples exactly uniformly from the rounded-feasible
    set, which contains every truly feasible subnet (rounding down never excludes one). Candidates over the true
    budget are then rejected, so accepted subnets are exactly uniform over the feasible set -- the same distribution
    as plain rejection sampling -- with an acceptance rate near 1 (rounding errs by < L grid steps in total).
    """

    def __init__(self, n_choices: np.ndarray, cost: CostTable, budget: float, grid: int = 2048, block: int = 256):
        self.block = block
        self._buf, self._pos, self._keys = np.zeros((0, len(n_choices)), dtype=np.int64), 0, []
        self.n_choices = np.asarray(n_choices, dtype=np.int64)
        self.cost, self.budget = cost, float(budget)
        L, N = len(self.n_choices), int(self.n_choices.max())
        per_op = np.full((L, N), np.inf)
        for l, k in enumerate(self.n_choices):
            per_op[l, :k] = cost.per_op[l, :k]
        ok = np.isfinite(per_op)
        lo = np.where(ok, per_op, np.inf).min(1)
        rem = budget_limit(self.budget) - cost.base - lo.sum()
        self.empty = not (np.isfinite(rem) and rem >= 0 and np.isfinite(lo).all())
        step = rem / grid if rem > 0 else 1.0
        B = grid if rem > 0 else 0
        shifted = np.where(ok, per_op - lo[:, None], np.inf)
        # grid weight of each op, capped at B + 1 (= cannot fit even alone); unavailable ops get B + 1 too
        w = np.where(ok, np.minimum(np.floor(np.minimum(shifted / step, B + 1.0)), B + 1), B + 1).astype(np.int64)
        self.w, self.B, self.base = w, B, N
        # count[l, r]: number of ways to choose layers l.. with total grid weight <= r (float64: exact below 2**53)
        count = np.zeros((L + 1, B + 1))
        count[L] = 1.0
        # cum[l, c, r] = sum over ops c' <= c of count[l+1][r - w[l, c']]: completions of layers l.. when layer l
        # takes an op <= c with r grid steps left (laid out so every update is a contiguous slice)
        cum = np.zeros((L, N, B + 1))
        for l in range(L - 1, -1, -1):
            for c in range(N):
                if c:
                    cum[l, c] = cum[l, c - 1]
                if w[l, c] <= B:
                    cum[l, c, w[l, c]:] += count[l + 1, : B + 1 - w[l, c]]
            count[l] = cum[l, N - 1]
        self.cum = cum

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(<= n, L) independent uniform feasible subnets (duplicates possible; over-budget draws already dropped)."""
        L, N = self.w.shape
        if self.empty or n <= 0:
            return np.zeros((0, L), dtype=np.int64)
        r = np.full(n, self.B, dtype=np.int64)
        out = np.zeros((n, L), dtype=np.int64)
        u = rng.random((n, L))
        for l in np.flatnonzero(self.n_choices > 1):  # single-choice layers cost 0 grid steps (their op is the minimum)
            cum = self.cum[l][:, r]  # (N, n)
            pick = (cum <= u[:, l] * cum[-1]).sum(0)  # first op whose cumulative weight exceeds u * total
            out[:, l] = pick
            r -= self.w[l, pick]
        return out[self.cost.batch(out) <= budget_limit(self.budget)]

    def sample(self, rng: np.random.Generator, n: int, seen: set | None = None,
               max_draws: int = 1_000_000) -> np.ndarray:
        """Up to n distinct feasible subnets not in ``seen`` (keys from :func:`subnet_keys`; updated).

        Draws are made in blocks of at least ``self.block`` and buffered: the draws are i.i.d. and independent of
        ``seen``, so taking them from a buffer filled earlier is the same distribution as drawing each when needed,
        at a fraction of the numpy calls (a search asks for a few subnets at a time, ~20 times).
        """
        seen = set() if seen is None else seen
        out: list[np.ndarray] = []
        draws = 0
        while len(out) < n and not self.empty:
            if self._pos >= len(self._buf):
                if draws >= max_draws:
                    break
                m = max(2 * (n - len(out)), self.block)
                draws += m
                self._buf, self._pos = self.draw(rng, m), 0
                keys = subnet_keys(self._buf, self.base)
                self._keys = keys.tolist() if isinstance(keys, np.ndarray) else keys
            while self._pos < len(self._buf) and len(out) < n:
                key = self._keys[self._pos]
                if key not in seen:
                    seen.add(key)
                    out.append(self._buf[self._pos])
                self._pos += 1
        return np.stack(out) if out else np.zeros((0, len(self.n_choices)), dtype=np.int64)


def sample_under_budget(rng: np.random.Generator, n_choices: np.ndarray, cost: CostTable, budget: float, n: int,
                        seen: set | None = None, max_draws: int = 1_000_000,
                        sampler: FeasibleSampler | None = None) -> np.ndarray:
    """Up to n distinct subnets drawn uniformly from those with cost <= budget (and not in ``seen``, a set of
    :func:`subnet_keys` with base ``max(n_choices)``, which is updated). Gives up after ``max_draws`` draws (e.g.
    when every feasible subnet has been seen).

    Pass a ``sampler`` built once for (n_choices, cost, budget) to reuse its tables across calls.
    """
    sampler = sampler if sampler is not None else FeasibleSampler(n_choices, cost, budget)
    return sampler.sample(rng, n, seen, max_draws)
