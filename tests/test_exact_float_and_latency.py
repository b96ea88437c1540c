"""Exact search with float costs (budgets at a subnet's exact cost, huge scores) against brute force; the shared
budget tolerance; latency tables with per-op spread, their cache, and the noise warning."""

import itertools
import json

import numpy as np
import pytest

from bnnas import BNNASError
from bnnas.core.flops import CostTable
from bnnas.indicators.bn import ScoreTable
from bnnas.core.latency import LatencyTable, TimingSettings, latency_noise_warning, measure_latency_table
from bnnas.search import check_budget, exact_search
from bnnas.search.common import BUDGET_RTOL, budget_limit
from bnnas.core.space import SpaceTable, build_space


def _float_problem(seed: int, scale: float, L: int = 5, N: int = 4):
    rng = np.random.default_rng(seed)
    n = rng.integers(2, N + 1, size=L)
    cost = np.full((L, N), np.inf)
    score = np.full((L, N), np.nan)
    for l in range(L):
        # costs of very different magnitudes and no exact binary form: sums round differently in every order
        cost[l, : n[l]] = rng.random(n[l]) * 10.0 ** rng.integers(-1, 7) + 0.1
        score[l, : n[l]] = (rng.random(n[l]) - (0.3 if seed % 2 else 0.0)) * scale
    return CostTable(cost, float(rng.random() * 1e3), "x"), ScoreTable(score), n


def _brute_force(cost: CostTable, table: ScoreTable, n, budget: float) -> tuple[float, np.ndarray]:
    combos = np.array(list(itertools.product(*[range(k) for k in n])))
    fits = np.array([cost.of(c) for c in combos]) <= budget_limit(budget)
    scores = np.where(fits, table.batch(combos), -np.inf)
    return float(scores.max()), combos[int(np.argmax(scores))]


@pytest.mark.parametrize("scale", [1.0, 1e9])
@pytest.mark.parametrize("seed", range(12))
def test_exact_equals_brute_force_on_float_costs(seed, scale):
    cost, table, n = _float_problem(seed, scale)
    rng = np.random.default_rng(seed + 100)
    subnets = [rng.integers(0, n) for _ in range(3)]
    budgets = [cost.min_total] + [cost.of(s) for s in subnets]  # each the same float sum a subnet's cost gives
    for q in rng.random(4):
        # the optimum's own cost as the budget: the optimum then sits exactly on the budget
        budgets.append(cost.of(_brute_force(cost, table, n, cost.min_total + q * (cost.max_total - cost.min_total))[1]))
    for budget in budgets:
        r = exact_search(table, cost, budget)
        best, _ = _brute_force(cost, table, n, budget)
        assert abs(r.score - best) <= 1e-12 * max(abs(best), 1.0), (budget, r.score, best)
        assert cost.of(r.choices) <= budget_limit(budget)
        assert r.score == pytest.approx(table.of(r.choices), rel=1e-12, abs=1e-12)


def test_exact_at_the_cheapest_float_cost_returns_the_cheapest_subnet():
    cost, table, n = _float_problem(3, 1e8, L=12, N=6)
    r = exact_search(table, cost, cost.min_total)
    assert r.cost == pytest.approx(cost.min_total, rel=1e-15)


def test_check_budget_shares_the_tolerance():
    cost, _, _ = _float_problem(7, 1.0, L=12, N=6)
    lo = cost.min_total
    check_budget(cost, lo)
    reordered = float(sum(reversed(np.nanmin(cost.per_op, axis=1).tolist()))) + cost.base  # another summation order
    check_budget(cost, reordered)
    check_budget(cost, np.nextafter(lo, 0.0))  # one ulp below: rounding, not a smaller budget
    with pytest.raises(BNNASError, match="no subnet fits"):
        check_budget(cost, lo * (1 - 10 * BUDGET_RTOL))
    with pytest.raises(BNNASError, match="no subnet fits"):
        exact_search(ScoreTable(np.zeros(cost.per_op.shape)), cost, lo * (1 - 10 * BUDGET_RTOL))


# ---- latency ----

def _tiny_space():
    # two layers: 7 choices (identity allowed) and 6 (width change), so one table entry is absent
    t = SpaceTable(input_size=16, stem=(8, 2), first_channels=8, stages=((6, 8, 1, 1), (6, 16, 1, 1)),
                   head_channels=16, num_classes=4, free_identity=True)
    return build_space("tiny-latency", t)


# one thread: two OpenMP threads on a busy 2-core machine stall for milliseconds per call
FAST = TimingSettings(block_seconds=0.0003, min_passes=3, max_passes=4, max_seconds=1.0, threads=1)


def test_latency_table_has_spread_and_its_cache_round_trips(tmp_path, monkeypatch):
    import bnnas.core.latency as lat

    space = _tiny_space()
    cache = tmp_path / "latency_table.json"
    t = measure_latency_table(space, "cpu", cache=cache, timing=FAST)
    assert isinstance(t, LatencyTable) and isinstance(t, CostTable) and t.unit == "seconds"
    valid = np.isfinite(t.per_op)
    assert valid.sum() == 13 and t.spread.shape == t.per_op.shape
    assert (t.per_op[valid] > 0).all() and (t.spread[valid] >= 0).all() and np.isnan(t.spread[~valid]).all()
    assert t.base > 0 and t.base_spread >= 0 and 3 <= t.passes <= 4
    assert t.of([0, 0]) == pytest.approx(t.base + t.per_op[0, 0] + t.per_op[1, 0])  # CostTable interface intact

    def no_measuring(*a, **k):
        raise AssertionError("a valid cache must not be re-measured")

    monkeypatch.setattr(lat, "_measure", no_measuring)
    again = measure_latency_table(space, "cpu", cache=cache, timing=FAST)
    np.testing.assert_array_equal(again.per_op, t.per_op)
    np.testing.assert_array_equal(again.spread, t.spread)  # NaN where absent, equal elsewhere
    assert again.base == t.base and again.base_spread == t.base_spread and again.passes == t.passes


@pytest.mark.parametrize("old", [
    lambda doc: {"key": doc["key"], "per_op": doc["per_op"], "base": doc["base"]},  # format 1: no spread
    lambda doc: "{not json",
])
def test_old_or_broken_latency_cache_is_measured_again(tmp_path, old):
    space = _tiny_space()
    cache = tmp_path / "latency_table.json"
    measure_latency_table(space, "cpu", cache=cache, timing=FAST)
    doc = json.loads(cache.read_text())
    stale = old(doc)
    cache.write_text(stale if isinstance(stale, str) else json.dumps(stale))
    t = measure_latency_table(space, "cpu", cache=cache, timing=FAST)
    assert t.spread is not None and np.isfinite(t.spread[np.isfinite(t.per_op)]).all()
    assert json.loads(cache.read_text())["format"] == 2


def _constructed(spread_ms: float) -> LatencyTable:
    per_op = np.tile([1e-3, 2e-3, 3e-3], (4, 1))  # every layer: ops 1 ms apart
    return LatencyTable(per_op, 1e-3, "seconds", np.full(per_op.shape, spread_ms * 1e-3), 0.0, 10)


def test_noise_warning_fires_when_spread_exceeds_the_gaps():
    budget = 9e-3  # 4 ms of room above the fastest subnet (5 ms)
    noisy = _constructed(0.5)  # 4 x 0.5 ms of spread > the 1 ms step between neighbouring ops
    msg = latency_noise_warning(noisy, budget, [1, 1, 1, 1])
    assert msg is not None and "nearest alternative" in msg
    assert latency_noise_warning(noisy, budget) is not None
    quiet = _constructed(1e-4)
    assert latency_noise_warning(quiet, budget, [1, 1, 1, 1]) is None
    assert latency_noise_warning(quiet, budget) is None
    # a plain FLOPs-style table has no spread: nothing to warn about
    assert latency_noise_warning(CostTable(quiet.per_op, quiet.base, "MACs"), budget) is None


def test_noise_warning_compares_with_the_budget_room():
    t = _constructed(0.1)  # 0.4 ms of summed spread: below the 1 ms op steps
    assert latency_noise_warning(t, 10e-3, [1, 1, 1, 1]) is None  # 5 ms of room: 0.4 ms is under 10 %
    msg = latency_noise_warning(t, 6e-3, [1, 0, 0, 0])  # 1 ms of room
    assert msg is not None and "room" in msg
