"""Rank statistics, early-bird auto-stop, the (un)biased spaces, every indicator against a hand computation,
and a tiny end-to-end ranking study."""

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.utils.data import TensorDataset

from bnnas import get_space
from bnnas.indicators.spos_accuracy import AccuracyIndicator
from bnnas.trust.studies.bias.bias import bias_picks, conv_share, free_layers, uniform_conv_share
from bnnas.trust.studies.indicator_scoring import parse_indicator_spec
from bnnas.trust.rank_stats import bootstrap_ci, seed_agreement
from bnnas.trust.studies.study_data import study_data
from bnnas.trust.studies.correlation.study_sampling import stratified_sample
from bnnas.trust.verdicts.early_bird import EarlyBirdStopper
from bnnas.trust.verdicts.early_bird_compare import compare_stop_vs_full, replay_stopper
from bnnas.core.flops import flops_table
from bnnas.indicators.bn import ScoreTable, bn_score_table
from bnnas.indicators.registry import build_indicator
from bnnas.core.ops import last_bn
from bnnas.trust.rank_stats import correlation_report, kendall_tau, spearman_rho
from bnnas.search import exact_search
from bnnas.core.space import is_parameter_free
from bnnas.core.subnet import SubNet
from bnnas.core.arch import Arch
from bnnas.core.supernet import Supernet
from bnnas.indicators.zero_cost import hamming_kernel, naswot_from_codes, naswot_score, synflow_score

@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a small shared machine, two threads per process slow these tests down several-fold."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- rank statistics -------------------------------------------------------------------------------------------------
VECTORS = [
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
    ([0.3, 0.1, 0.9, 0.5, 0.5, 0.2, 0.8], [10, 30, 20, 40, 40, 5, 1]),  # ties in both
    ([3, 1, 2, 5, 4, 6, 8, 7, 10, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    ([1, 1, 2, 2, 3, 3], [3, 2, 1, 3, 2, 1]),
    ([9, 8, 7, 6], [1, 2, 3, 4]),  # perfectly reversed
]


@pytest.mark.parametrize("x,y", VECTORS)
def test_tau_and_rho_match_scipy(x, y):
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    rep = correlation_report(x, y)
    assert rep["kendall_p"] == pytest.approx(stats.kendalltau(x, y).pvalue)
    assert rep["n"] == len(x)


def test_rank_stat_edge_cases():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert spearman_rho([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))  # constant vector: undefined
    assert math.isnan(spearman_rho([1, 2, 3], [4, 4, 4]))
    with pytest.raises(ValueError):
        kendall_tau([1, 2], [1, 2, 3])


# -- early-bird auto-stop ----------------------------------------------------------------------------------------------
def _tables_from_orders(orders_per_epoch, n_ops=6):
    """Score tables whose per-layer ranking is the given op order (best first)."""
    tables = []
    for orders in orders_per_epoch:
        t = np.full((len(orders), n_ops), np.nan)
        for l, order in enumerate(orders):
            for rank, op in enumerate(order):
                t[l, op] = 1.0 - 0.1 * rank
        tables.append(t)
    return tables


def _settling_sequence(settle_at=4, epochs=10, layers=5, seed=0):
    rng = np.random.default_rng(seed)
    final = [rng.permutation(6) for _ in range(layers)]
    return _tables_from_orders([[rng.permutation(6) for _ in range(layers)] if e < settle_at - 1 else final
                                for e in range(epochs)])


def test_auto_stop_fires_on_a_settling_sequence():
    tables = _settling_sequence(settle_at=4)
    # Epochs 4.. share one ranking: comparisons (5,4), (6,5), (7,6) are perfect, so with patience 3 the stopper
    # fires after epoch 7 and reports the ranking settled at epoch 4 (first three comparisons 4..7 all >= 0.95).
    stop, settled = replay_stopper(tables, threshold=0.95, patience=3)
    assert (stop, settled) == (7, 4)
    stopper = EarlyBirdStopper(0.95, 3)
    fired = [n for n in range(1, len(tables) + 1) if stopper.update(tables[:n])]
    assert fired[0] == 7 and stopper.settled_at == 4


def test_auto_stop_does_not_fire_on_a_changing_sequence():
    rng = np.random.default_rng(1)
    base = [rng.permutation(6) for _ in range(5)]
    # every epoch reverses the order of every layer: consecutive similarity is 0
    orders = [[o if e % 2 == 0 else o[::-1] for o in base] for e in range(12)]
    assert replay_stopper(_tables_from_orders(orders)) == (None, None)
    # and random re-rankings every epoch do not settle either
    tables = _tables_from_orders([[rng.permutation(6) for _ in range(5)] for _ in range(12)])
    stopper = EarlyBirdStopper(0.95, 3)
    assert not any(stopper.update(tables[:n]) for n in range(1, 13))


def test_stop_vs_full_comparison_on_synthetic_history():
    space = get_space("spos-small")
    rng = np.random.default_rng(0)
    L, N = len(space.layers), space.max_choices
    nchoice = [len(l.choices) for l in space.layers]

    def table():
        t = np.full((L, N), np.nan)
        for l, n in enumerate(nchoice):
            t[l, :n] = rng.random(n)
        return t

    settled = table()
    tables = [table(), table()] + [settled] * 4 + [settled + 0.0] * 2
    tables[-1] = settled.copy()
    tables[-1][0, :6] = [0, 0, 0, 0, 0, 5.0]  # the last epoch changes layer 0's winner
    budget = space.default_budget * 1e6
    doc = compare_stop_vs_full(space, tables, budget, 0.95, 3)
    assert doc["stop_epoch"] == 6 and doc["settled_at"] == 3
    assert doc["stop"]["choices"] == exact_search(ScoreTable(tables[5]), flops_table(space), budget).choices.tolist()
    assert doc["final"]["choices"] == exact_search(ScoreTable(tables[-1]), flops_table(space), budget).choices.tolist()
    assert doc["final"]["overlap_with_final"] == 1.0
    assert doc["stop"]["score_final_table"] <= doc["final"]["score_final_table"] + 1e-12
    assert doc["epochs_saved"] == 2


# -- (un)biased spaces ---------------------------------------------------------------------------------------------------
def test_unbiased_space_has_a_bn_after_every_candidate_and_biased_does_not():
    unb, bia = get_space("unbiased-small"), get_space("biased-small")
    assert [l.choices for l in unb.layers] == [l.choices for l in bia.layers]
    assert any(is_parameter_free(o) for l in unb.layers for o in l.choices if len(l.choices) > 1)
    for li, ci, bn in Supernet(unb).indicator_bns():
        assert isinstance(bn, nn.BatchNorm2d) and bn.affine, (li, ci)
    for li, ci, bn in Supernet(bia).indicator_bns():
        op = bia.layers[li].choices[ci]
        assert (bn is None) == is_parameter_free(op), (li, op)
    # the standalone subnet agrees with the supernet
    ops = [("avg3" if "avg3" in l.choices else l.choices[0]) for l in unb.layers]
    assert any(o == "avg3" for o in ops)
    for space, has_bn in ((unb, True), (bia, False)):
        net = SubNet(Arch.from_ops(space, ops))
        for op, layer in zip(ops, net.layers):
            if op == "avg3":
                assert (last_bn(layer) is not None) == has_bn


def test_bias_measurement_on_hand_tables():
    bia, unb = get_space("biased-small"), get_space("unbiased-small")
    fl = free_layers(bia)
    assert fl and all("id" in bia.layers[i].choices for i in fl)
    assert uniform_conv_share(bia) == pytest.approx(6 / 9)
    big = flops_table(bia).max_total / 1e6
    # biased: every gamma 1, param-free ops have no BN -> 0 -> the search never picks them under a loose budget
    sup = Supernet(bia)
    for _, _, bn in sup.indicator_bns():
        if bn is not None:
            bn.weight.data.fill_(1.0)
    rows = bias_picks(bia, bn_score_table(sup).scores, [big])
    assert rows[0]["conv_share_free_layers"] == 1.0 and rows[0]["picked_param_free"] == []
    # unbiased: give identity the largest gamma -> it wins on every free layer
    sup = Supernet(unb)
    for li, ci, bn in sup.indicator_bns():
        bn.weight.data.fill_(3.0 if unb.layers[li].choices[ci] == "id" else 1.0)
    rows = bias_picks(unb, bn_score_table(sup).scores, [big])
    assert rows[0]["conv_share_free_layers"] == 0.0 and rows[0]["picked_param_free"] == ["id"] * len(fl)
    choices = [0] * len(unb.layers)
    assert conv_share(unb, choices)["conv_share_free_layers"] == 1.0


# -- every indicator against a hand computation ---------------------------------------------------------------------
def test_bn_indicator_in_the_unbiased_space_by_hand():
    space = get_space("unbiased-small")
    sup = Supernet(space)
    expected = np.full((len(space.layers), space.max_choices), np.nan)
    for li, ci, bn in sup.indicator_bns():
        C = bn.num_features
        g = torch.tensor([(-1) ** k * (li + 1) / (ci + 1) * (k % 3) for k in range(C)], dtype=torch.float32)
        bn.weight.data.copy_(g)
        bn.bias.data.fill_(-7.0)  # beta is not read
        expected[li, ci] = sum(abs(v) for v in g.tolist()) / C
    table = build_indicator("bn", sup)
    np.testing.assert_allclose(table.scores, expected, rtol=1e-6)


def test_flops_indicator_is_the_flops_table():
    space = get_space("spos-small")
    t = build_indicator("flops", Supernet(space))
    ch = [len(l.choices) - 1 for l in space.layers]
    assert t.of(ch) * 1e6 == pytest.approx(flops_table(space).of(ch) - flops_table(space).base)


def test_spos_accuracy_indicator_by_hand():
    space = get_space("spos-small")
    sup = Supernet(space)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, 32, 32, generator=g)
    y = torch.tensor([3] * 13 + [1] * 27)
    sup.head.fc.weight.data.zero_()
    sup.head.fc.bias.data.copy_(torch.nn.functional.one_hot(torch.tensor(3), 10).float() * 5)  # always predicts 3
    before = {k: v.clone() for k, v in sup.state_dict().items()}
    ind = AccuracyIndicator(sup, TensorDataset(x, y), TensorDataset(x, y), calib_batches=1, batch_size=20)
    pop = np.zeros((2, len(space.layers)), dtype=np.int64)
    np.testing.assert_allclose(ind(pop), [13 / 40, 13 / 40])
    for k, v in sup.state_dict().items():  # BN statistics restored
        assert torch.equal(v, before[k]), k


def test_naswot_by_hand():
    codes = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    # K_H[i, j] = N_A - Hamming = 3 on the diagonal, 1 elsewhere; det [[3,1,1],[1,3,1],[1,1,3]] = 20
    np.testing.assert_allclose(hamming_kernel(codes).numpy(), [[3, 1, 1], [1, 3, 1], [1, 1, 3]])
    assert naswot_from_codes(codes) == pytest.approx(math.log(20.0))
    assert naswot_from_codes(torch.tensor([[1, 0], [1, 0]])) == float("-inf")  # identical codes: singular
    # the same codes produced by a real forward pass: pre-activations e_i - 0.5 are positive only at unit i
    lin = nn.Linear(3, 3)
    lin.weight.data.copy_(torch.eye(3))
    lin.bias.data.fill_(-0.5)
    net = nn.Sequential(lin, nn.ReLU6(inplace=True))
    assert naswot_score(net, [net], torch.eye(3)) == pytest.approx(math.log(20.0))


def test_naswot_on_the_supernet_leaves_it_untouched(digits):
    space = get_space("spos-small")
    sup = Supernet(space)
    before = {k: v.clone() for k, v in sup.state_dict().items()}
    ind = build_indicator("naswot", sup, data=digits, naswot_batch=16)
    pop = np.array([[0] * len(space.layers), [5] * 3 + [0] * (len(space.layers) - 3)])
    s1, s2 = ind(pop), ind(pop)
    assert np.isfinite(s1).all() and np.array_equal(s1, s2)
    for k, v in sup.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_synflow_by_hand():
    l1, l2 = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    l1.weight.data.copy_(torch.tensor([[-3.0, 4.0], [5.0, -6.0]]))
    l2.weight.data.copy_(torch.tensor([[-2.0, 7.0]]))
    bn = nn.BatchNorm1d(2)
    bn.weight.data.fill_(-100.0)  # BN is disabled: must not matter
    net = nn.Sequential(l1, bn, nn.ReLU6(), l2)
    # |W1| 1 = [7, 11] (ReLU6 must not clip it), R = 2 * 7 + 7 * 11 = 91; for a linear chain
    # sum_theta theta dR/dtheta = R per layer, so synflow = 2 R = 182.
    assert synflow_score(net, [l1.weight, l2.weight], net, (2,), log=False) == pytest.approx(182.0)
    assert synflow_score(net, [l1.weight, l2.weight], net, (2,)) == pytest.approx(math.log(182.0))
    # the network is restored: signs, dtype, BN and the ReLU6 clip
    assert l1.weight.dtype == torch.float32 and l1.weight[0, 0].item() == -3.0 and bn.weight[0].item() == -100.0
    assert "forward" not in vars(bn) and net[2](torch.tensor([9.0])).item() == 6.0


def test_synflow_on_the_supernet_restores_it():
    space = get_space("spos-small")
    sup = Supernet(space)
    from bnnas.training.supernet_trainer import configure_trainable

    configure_trainable(sup, "bn")
    flags = [p.requires_grad for p in sup.parameters()]
    before = {k: v.clone() for k, v in sup.state_dict().items()}
    ind = build_indicator("synflow", sup)
    small = np.zeros((1, len(space.layers)), dtype=np.int64)
    large = np.array([[5 if l.choices[5:6] == ("k7e6",) else 0 for l in space.layers]])
    s_small, s_large = ind(small)[0], ind(large)[0]
    assert np.isfinite(s_small) and s_large > s_small  # wider kernels/expansions carry more synaptic flow
    assert [p.requires_grad for p in sup.parameters()] == flags
    assert all(p.grad is None for p in sup.parameters())
    for k, v in sup.state_dict().items():
        assert torch.equal(v, before[k]), k


# -- sampling and the end-to-end study -------------------------------------------------------------------------------
def test_stratified_sample_spreads_over_the_flops_range():
    space = get_space("spos-small")
    cost = flops_table(space)
    pop = stratified_sample(space, 6, seed=0)
    f = cost.batch(pop)
    assert len(np.unique(pop, axis=0)) == 6 and np.all(np.diff(f) >= 0)
    edges = np.linspace(cost.min_total, cost.max_total, 7)
    assert np.array_equal(np.digitize(f, edges[1:-1]), np.arange(6))  # one subnet per FLOPs bin
    assert np.array_equal(pop, stratified_sample(space, 6, seed=0))


def test_study_split_keeps_spos_heldout_out_of_training_and_val(digits):
    data = study_data(digits, 100, seed=0)
    assert len(data.heldout) == 100 and len(data.train) == len(digits.train) - 100
    assert set(data.heldout.indices).isdisjoint(data.train.indices)
    assert data.val is digits.val and data.heldout is not digits.val


@pytest.mark.slow
def test_tiny_end_to_end_study(tmp_path):
    from bnnas.cli.trust import main

    out = tmp_path / "corr"
    rc = main(["rank", "--k", "3", "--proxy-epochs", "1", "--bn-epochs", "1", "--all-epochs", "1",
               "--limit-train", "256", "--holdout", "64", "--max-flops", "6", "--spos-calib-batches", "1",
               "--indicators", "bn@bn,bn@bnall,bn@all,spos-acc@all,naswot@bn,synflow@init,flops",
               "--proxy-repeats", "2", "--gamma-init", "0", "--bootstrap", "50",
               "--work-dir", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    doc = json.loads((out / "correlation.json").read_text())
    assert doc["format"] == "bnnas.correlation/1" and doc["k"] == 3 and len(doc["subnets"]) == 3
    assert set(doc["indicators"]) == {"bn@bn", "bn@bnall", "bn@all", "spos-acc@all", "naswot@bn", "synflow@init",
                                      "flops"}
    # @bnall is a BN-only supernet whose every BN trains; --gamma-init reaches both BN-only supernets, not SPOS's
    sup = doc["supernets"]
    assert sup["bnall"]["config"]["train_mode"] == "bn" and sup["bnall"]["config"]["bn_params"] == "all"
    assert sup["bn"]["config"]["bn_params"] == "last" and sup["all"]["config"]["train_mode"] == "all"
    assert sup["bn"]["config"]["gamma_init"] == 0.0 == sup["bnall"]["config"]["gamma_init"]
    assert sup["all"]["config"]["gamma_init"] == 1.0
    sa = doc["ground_truth"]["seed_agreement"]
    assert sa["repeats"] == 2 and len(sa["per_pair"]) == 1
    runs = np.array([s["acc_runs"] for s in doc["subnets"]])
    if np.ptp(runs[:, 0]) > 0 and np.ptp(runs[:, 1]) > 0:
        assert sa["kendall_tau"] == pytest.approx(stats.kendalltau(runs[:, 0], runs[:, 1]).statistic)
    assert "bootstrap" in doc["indicators"]["flops"] and "kendall_tau_ci" in doc["indicators"]["flops"]
    assert "95 % CI" in (out / "correlation.md").read_text()
    for spec, r in doc["indicators"].items():
        assert len(r["scores"]) == 3
        for key in ("kendall_tau", "spearman_rho", "supernet_epochs", "supernet_seconds", "score_seconds",
                    "search_1000_seconds"):
            assert key in r, (spec, key)
        if np.isfinite(r["kendall_tau"]):
            assert r["kendall_tau"] == pytest.approx(stats.kendalltau(r["scores"], [s["acc"] for s in doc["subnets"]]).statistic)
    assert doc["indicators"]["bn@bn"]["supernet_epochs"] == 1 and doc["indicators"]["flops"]["supernet_epochs"] == 0
    assert doc["supernets"]["bn"]["train_mode"] == "bn" and doc["supernets"]["all"]["train_mode"] == "all"
    for s in doc["subnets"]:
        assert 0.0 <= s["acc"] <= 1.0 and s["flops_m"] <= 6.0
    for f in doc["files"].values():
        assert (out / f).is_file()
    # rerun reuses the cached subnets and the finished supernets: the same numbers
    rc = main(["rank", "--k", "3", "--proxy-epochs", "1", "--bn-epochs", "1", "--all-epochs", "1",
               "--limit-train", "256", "--holdout", "64", "--max-flops", "6", "--spos-calib-batches", "1",
               "--indicators", "bn@bn,flops", "--work-dir", str(out), "--quiet", "--device", "cpu",
               "--proxy-repeats", "2",
               "--supernet-bn", str(out / "supernet-bn" / "supernet.pth")])
    assert rc == 0
    doc2 = json.loads((out / "correlation.json").read_text())
    assert [s["acc"] for s in doc2["subnets"]] == [s["acc"] for s in doc["subnets"]]
    assert doc2["indicators"]["bn@bn"]["scores"] == doc["indicators"]["bn@bn"]["scores"]


@pytest.mark.slow
def test_search_early_bird_stops_reruns_idempotently_and_matches_the_replay(tmp_path):
    """tools/search.py --early-bird end to end: it stops where the replay says, a re-run does not train on, and the
    comparison tool (fed the stopped run's history) names the arch search.py found."""
    from bnnas.cli.search import main as search_main
    from bnnas.cli.trust import main as trust_main

    wd = tmp_path / "eb"
    flags = ["--epochs", "4", "--early-bird", "--eb-threshold", "0", "--eb-patience", "1", "--search", "exact",
             "--work-dir", str(wd), "--quiet", "--device", "cpu"]
    assert search_main(flags) == 0
    s1 = json.loads((wd / "summary.json").read_text())
    assert s1["stopped_early_at"] == 2 and s1["epochs_trained"] == 2  # threshold 0 settles at the first comparison
    assert search_main(flags) == 0  # re-run of a finished early-stopped run: no further epoch
    s2 = json.loads((wd / "summary.json").read_text())
    assert s2["epochs_trained"] == 2 and s2["arch"] == s1["arch"]
    out = tmp_path / "cmp"
    assert trust_main(["early-bird", "--scores", str(wd / "op_scores.json"), "--eb-threshold", "0",
                       "--eb-patience", "1", "--work-dir", str(out)]) == 0
    doc = json.loads((out / "early_bird_compare.json").read_text())
    assert doc["stop_epoch"] == 2 and doc["stop"]["ops"] == s1["arch"]


# -- uncertainty of the study: bootstrap CIs and the ground truth's seed agreement --------------------------------------
def _noisy(k: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random(k)
    return x, x + noise * rng.normal(size=k)


def test_bootstrap_ci_contains_the_estimate_and_narrows_with_more_subnets():
    x, y = _noisy(8, 0.3, 1)
    r = bootstrap_ci([(x, y)], 500, seed=0)
    lo, hi = r["kendall_tau_ci"]
    assert lo <= kendall_tau(x, y) <= hi and -1 <= lo < hi <= 1
    lo_r, hi_r = r["spearman_rho_ci"]
    assert lo_r <= spearman_rho(x, y) <= hi_r
    assert r["bootstrap"]["resamples"] == 500 and r["bootstrap"]["valid_tau"] > 450
    assert bootstrap_ci([(x, y)], 500, seed=0) == r  # fixed RNG: reproducible
    # the same relation measured on 10x more subnets: a much narrower interval
    xb, yb = _noisy(80, 0.3, 1)
    lo_b, hi_b = bootstrap_ci([(xb, yb)], 500, seed=0)["kendall_tau_ci"]
    assert hi_b - lo_b < 0.6 * (hi - lo)
    assert lo_b <= kendall_tau(xb, yb) <= hi_b


def test_bootstrap_ci_widens_with_noise_and_spans_zero_on_unrelated_data():
    x = np.arange(12.0)
    exact = bootstrap_ci([(x, 2 * x + 1)], 300, seed=0)
    assert exact["kendall_tau_ci"] == pytest.approx([1.0, 1.0]) and exact["spearman_rho_ci"] == pytest.approx([1.0, 1.0])
    xs, ys = _noisy(12, 0.2, 3)
    xn, yn = _noisy(12, 2.0, 3)
    w_small = np.diff(bootstrap_ci([(xs, ys)], 300, seed=0)["kendall_tau_ci"])[0]
    w_big = np.diff(bootstrap_ci([(xn, yn)], 300, seed=0)["kendall_tau_ci"])[0]
    assert w_big > w_small
    rng = np.random.default_rng(5)
    lo, hi = bootstrap_ci([(rng.random(10), rng.random(10))], 300, seed=0)["kendall_tau_ci"]
    assert lo < 0 < hi
    assert bootstrap_ci([([1, 2], [2, 1])], 100)["kendall_tau_ci"] is None  # K < 3: no interval


def test_seed_agreement_of_the_ground_truth_by_hand():
    acc = [0.71, 0.75, 0.69, 0.80, 0.77]
    same = seed_agreement([[a, a] for a in acc], 200)
    assert same["kendall_tau"] == pytest.approx(1.0) and same["spearman_rho"] == pytest.approx(1.0)
    assert same["kendall_tau_ci"] == pytest.approx([1.0, 1.0]) and same["mean_seed_std"] == 0.0
    assert same["spread_of_means"] == pytest.approx(0.11)
    flipped = seed_agreement([[a, -a] for a in acc], 200)
    assert flipped["kendall_tau"] == pytest.approx(-1.0)
    assert seed_agreement([[a] for a in acc]) is None  # one seed: nothing to compare
    runs = np.array([[0.1, 0.3, 0.2], [0.4, 0.2, 0.5], [0.3, 0.1, 0.6], [0.9, 0.8, 0.7]])
    three = seed_agreement(runs.tolist(), 100)
    pairs = [(0, 1), (0, 2), (1, 2)]
    assert three["repeats"] == 3 and [p["repeats"] for p in three["per_pair"]] == [list(p) for p in pairs]
    assert three["kendall_tau"] == pytest.approx(np.mean([stats.kendalltau(runs[:, a], runs[:, b]).statistic
                                                          for a, b in pairs]))
    assert three["spearman_rho"] == pytest.approx(np.mean([stats.spearmanr(runs[:, a], runs[:, b]).statistic
                                                           for a, b in pairs]))


def test_indicator_specs_name_the_bn_only_all_bn_supernet():
    assert parse_indicator_spec("bn@bnall") == ("bn", "bnall")
    assert parse_indicator_spec("bn@all") == ("bn", "all")  # the BN indicator of the all-parameters supernet
    with pytest.raises(Exception, match="bnall"):
        parse_indicator_spec("bn@nope")
