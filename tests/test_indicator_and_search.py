"""BN indicator against hand computation; exact search against brute force; EA and random search behaviour."""

import itertools

import numpy as np
import pytest
import torch

from bnnas import BNNASError, get_space
from bnnas.core.flops import CostTable, flops_table
from bnnas.indicators.bn import ScoreTable, bn_score_table
from bnnas.search import check_budget, evolutionary_search, exact_search, num_choices, random_search
from bnnas.core.supernet import Supernet


def test_bn_indicator_matches_hand_computation():
    space = get_space("spos-small")
    sup = Supernet(space)
    # Hand-set the last BN of every candidate: gamma_c = (-1)^c * (l + 1) * (c + 1) * (1 + k / C) with k the channel.
    expected = np.full((len(space.layers), space.max_choices), np.nan)
    for l, layer in enumerate(sup.layers):
        for c, (op, cand) in enumerate(zip(layer.choices, layer.candidates)):
            if op == "id":
                expected[l, c] = 0.0
                continue
            C = cand.bn3.num_features
            gamma = torch.tensor([(-1) ** k * (l + 1) * (c + 1) * (1 + k / C) for k in range(C)])
            cand.bn3.weight.data.copy_(gamma)
            cand.bn3.bias.data.fill_(123.0)  # beta must not matter
            cand.bn2.weight.data.fill_(99.0)  # nor any BN but the last
            expected[l, c] = sum(abs(g) for g in gamma.tolist()) / C
    table = bn_score_table(sup)
    np.testing.assert_allclose(table.scores, expected, rtol=1e-6)
    choices = [len(l.choices) - 1 for l in space.layers]
    assert table.of(choices) == pytest.approx(sum(expected[l, c] for l, c in enumerate(choices)))


def _random_problem(seed, L=6, N=6):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, N + 1, size=L)  # ragged: some layers have fewer choices
    cost = np.full((L, N), np.inf)
    score = np.full((L, N), np.nan)
    for l in range(L):
        cost[l, : n[l]] = rng.integers(1, 100, size=n[l])
        score[l, : n[l]] = rng.random(n[l])
    return CostTable(cost, 10.0, "MACs"), ScoreTable(score), n


def _brute_force(cost, table, n, budget):
    best, best_c = -np.inf, None
    for combo in itertools.product(*[range(k) for k in n]):
        if cost.of(combo) <= budget and table.of(combo) > best:
            best, best_c = table.of(combo), combo
    return best, best_c


@pytest.mark.parametrize("seed", range(8))
def test_exact_search_equals_brute_force(seed):
    cost, table, n = _random_problem(seed)
    lo, hi = cost.min_total, cost.max_total
    for budget in np.linspace(lo, hi, 5):
        r = exact_search(table, cost, budget)
        best, _ = _brute_force(cost, table, n, budget)
        assert r.score == pytest.approx(best)
        assert cost.of(r.choices) <= budget and table.of(r.choices) == pytest.approx(r.score)


def test_exact_on_paper_space_beats_or_ties_every_other_search():
    space = get_space("spos-imagenet")
    ft, nc = flops_table(space), num_choices(space)
    rng = np.random.default_rng(0)
    scores = np.where(np.isfinite(ft.per_op), rng.random(ft.per_op.shape), np.nan)
    scores[nc == 1, 0] = 0.0
    table = ScoreTable(scores)
    ex = exact_search(table, ft, 470e6)
    ea = evolutionary_search(table.batch, ft, 470e6, nc, seed=0)
    rs = random_search(table.batch, ft, 470e6, nc, seed=0)
    assert ex.cost <= 470e6 and ea.cost <= 470e6 and rs.cost <= 470e6
    assert ex.score >= ea.score - 1e-12 and ex.score >= rs.score - 1e-12
    assert ea.score > rs.score  # evolution should beat random sampling of the same size
    assert ea.evaluated == 1000  # population 50 x 20 generations, as in the paper
    # every candidate the EA scored respected the budget and was distinct
    assert (ea.history[:, 0] <= 470e6).all()


def test_evolution_is_deterministic_under_seed():
    space = get_space("spos-small")
    ft, nc = flops_table(space), num_choices(space)
    table = ScoreTable(np.where(np.isfinite(ft.per_op), np.random.default_rng(1).random(ft.per_op.shape), np.nan))
    a = evolutionary_search(table.batch, ft, 10e6, nc, seed=3)
    b = evolutionary_search(table.batch, ft, 10e6, nc, seed=3)
    assert (a.choices == b.choices).all() and a.score == b.score


def test_impossible_budget_names_the_smallest_subnet():
    ft = flops_table(get_space("spos-imagenet"))
    with pytest.raises(BNNASError, match=r"no subnet fits a budget of 300.00 MFLOPs: the smallest subnet .* 393.44"):
        check_budget(ft, 300e6)
    table = ScoreTable(np.zeros(ft.per_op.shape))
    with pytest.raises(BNNASError, match="no subnet fits"):
        exact_search(table, ft, ft.min_total - 1)
    # the smallest subnet itself is feasible
    r = exact_search(table, ft, ft.min_total)
    assert r.cost == ft.min_total


@pytest.mark.parametrize("seed", range(3))
def test_feasible_sampler_is_uniform_over_the_feasible_subnets(seed):
    """The DP sampler must draw exactly what rejection sampling draws: uniform over {cost <= budget}."""
    from bnnas.search.common import FeasibleSampler

    cost, _, n = _random_problem(seed, L=5, N=4)
    combos = np.array(list(itertools.product(*[range(k) for k in n])))
    budget = np.quantile(cost.batch(combos), 0.3)
    feasible = {tuple(c) for c in combos[cost.batch(combos) <= budget]}
    draws = FeasibleSampler(n, cost, budget, grid=8).draw(np.random.default_rng(seed), 40 * len(feasible))
    assert (cost.batch(draws) <= budget).all()
    keys, counts = np.unique(draws, axis=0, return_counts=True)
    assert {tuple(k) for k in keys} == feasible  # every feasible subnet reachable, nothing else
    expected = len(draws) / len(feasible)
    chi2 = ((counts - expected) ** 2 / expected).sum()
    dof = len(feasible) - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)  # far inside the chi-square tail: no op is favoured


@pytest.mark.parametrize("L", [6, 40])  # 40 layers x 6 choices overflow int64 keys: the bytes-key path
def test_take_unseen_equals_a_row_by_row_scan(L):
    from bnnas.search.common import subnet_keys, take_unseen

    rng = np.random.default_rng(L)
    rows = rng.integers(0, 2, size=(300, L))
    rows[:, 2:] = 0  # many repeats
    ok = rng.random(300) < 0.6
    seen0 = {k for k in (subnet_keys(rows[:5], 6).tolist() if L < 20 else subnet_keys(rows[:5], 6))}
    seen_a, seen_b = set(seen0), set(seen0)
    keys = subnet_keys(rows, 6)
    got = take_unseen(rows, keys, seen_a, 3, lambda r: ok[[int(np.flatnonzero((rows == x).all(1))[0]) for x in r]])
    expect = []
    keys_list = keys.tolist() if isinstance(keys, np.ndarray) else keys
    for i, k in enumerate(keys_list):  # naive: first occurrence, unseen, fits; stop at 3
        first = keys_list.index(k) == i
        if first and k not in seen_b and ok[i]:
            seen_b.add(k)
            expect.append(rows[i])
            if len(expect) == 3:
                break
    assert [r.tolist() for r in got] == [r.tolist() for r in expect] and seen_a == seen_b


def test_evolution_in_a_space_too_large_for_int_keys():
    cost, table, n = _random_problem(5, L=40, N=6)
    budget = cost.min_total + 0.3 * (cost.max_total - cost.min_total)
    ea = evolutionary_search(table.batch, cost, budget, n, seed=0)
    assert ea.evaluated == 1000 and (ea.history[:, 0] <= budget).all()
    assert ea.score >= random_search(table.batch, cost, budget, n, seed=0).score
