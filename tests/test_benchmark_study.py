"""Indicators against a benchmark table: the statistics on a hand-made table whose answers are known by construction,
the ``correlate --benchmark`` command on the published table, and CIFAR-10 as user data."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from bnnas import BNNASError
from bnnas.data import build_classification_data
from bnnas.trust.studies.benchmark.benchmark_stats import (
    _resampled_decile_taus, bootstrap_ranking_stats, budgeted_pick, flops_deciles, ranking_stats,
)

from conftest import ROOT, one_line_error


def _hand_made():
    """20 archs at 100..119 MFLOPs: ten FLOPs deciles of two archs each. Accuracy climbs by 10 a decile, but inside
    a decile the larger arch is 1 point *worse*: FLOPs ranks well overall and exactly backwards inside a decile."""
    flops = np.arange(100, 120, dtype=float)
    decile = np.arange(20) // 2
    acc = 10.0 * decile + (1 - np.arange(20) % 2)
    return flops, acc


def test_deciles_overall_and_within_on_the_hand_made_table():
    flops, acc = _hand_made()
    assert np.array_equal(flops_deciles(flops), np.arange(20) // 2)
    by_flops = ranking_stats(flops, acc, flops)
    assert by_flops["decile_tau"] == pytest.approx(-1.0)
    assert by_flops["kendall_tau"] == pytest.approx(stats.kendalltau(flops, acc).statistic) and by_flops["kendall_tau"] > 0.8
    perfect = ranking_stats(acc, acc, flops)
    assert perfect["kendall_tau"] == pytest.approx(1.0) and perfect["decile_tau"] == pytest.approx(1.0)
    assert all(b["pick_percentile"] == 100.0 for b in perfect["budgets"])


def test_budgeted_pick_in_a_band_on_the_hand_made_table():
    flops, acc = _hand_made()
    res = ranking_stats(flops, acc, flops)["budgets"][1]  # median budget 109.5: band 98.55..109.5 = archs 100..109
    assert res["budget"] == pytest.approx(109.5) and res["n"] == 10
    # FLOPs picks the 109-MFLOPs arch (acc 40), second best of the band (best: 41): 9 of 10 archs at or below it
    assert res["pick_acc"] == 40.0 and res["pick_percentile"] == pytest.approx(90.0)
    assert res["best_acc"] == 41.0 and res["median_acc"] == pytest.approx(20.5)


def test_tied_picks_count_as_their_expected_value():
    scores = np.array([3.0, 3.0, 1.0, 0.0])
    acc = np.array([90.0, 80.0, 85.0, 70.0])
    r = budgeted_pick(scores, acc, np.ones(4, dtype=bool))
    assert r["ties"] == 2 and r["pick_acc"] == pytest.approx(85.0)
    assert r["pick_percentile"] == pytest.approx((100.0 + 50.0) / 2)  # 90 tops the band, 80 has 2 of 4 at or below
    assert r["best_acc"] == 90.0 and r["median_acc"] == pytest.approx(82.5)
    empty = budgeted_pick(scores, acc, np.zeros(4, dtype=bool))
    assert empty["n"] == 0 and empty["pick_percentile"] is None


def test_tied_flops_share_a_decile():
    flops = np.array([1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], dtype=float)
    d = flops_deciles(flops)
    assert len(set(d[:4])) == 1


def test_weighted_tau_equals_scipys_tau_b_on_resampled_data_with_ties():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, 30).astype(float), rng.integers(0, 6, 30).astype(float)
    idx = rng.integers(0, 30, (5, 30))
    counts = np.zeros((5, 30), dtype=int)
    np.add.at(counts, (np.arange(5)[:, None], idx), 1)
    want = [stats.kendalltau(x[i], y[i]).statistic for i in idx]
    assert np.allclose(_resampled_decile_taus(x, y, counts), want)


def test_bootstrap_cis_hold_the_estimate():
    flops, acc = _hand_made()
    ci = bootstrap_ranking_stats(acc, acc, flops, 50)
    assert np.allclose(ci["kendall_tau_ci"], [1, 1]) and np.allclose(ci["decile_tau_ci"], [1, 1])
    noisy = bootstrap_ranking_stats(flops, acc + np.random.default_rng(0).normal(0, 5, 20), flops, 200)
    lo, hi = noisy["kendall_tau_ci"]
    assert lo < hi


@pytest.mark.slow
def test_correlate_benchmark_baselines_on_the_published_table(tmp_path):
    out = tmp_path / "bm"
    r = subprocess.run([sys.executable, "-m", "bnnas", "correlate", "--benchmark", "nas-bench-macro",
                        "--indicators", "flops,params", "--bootstrap", "20", "--work-dir", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "correlation.json").read_text())
    # the baselines are always there, the strongest structural rule first, and the rest measured against it
    assert list(doc["indicators"]) == ["depth-largest", "flops", "params", "depth"]
    assert doc["strongest_structural"] == "depth-largest"
    assert round(doc["indicators"]["depth-largest"]["all_keys"]["decile_tau"], 3) == 0.545
    assert doc["indicators"]["flops"]["clears_structural"] is False
    assert "vs depth-largest" in r.stdout and "does not clear it" in r.stdout
    flops = doc["indicators"]["flops"]
    assert round(flops["all_keys"]["kendall_tau"], 3) == 0.556 and flops["all_keys"]["n"] == 6561
    assert round(flops["distinct"]["kendall_tau"], 3) == 0.546 and flops["distinct"]["n"] == 3969
    assert doc["data_role"] == "data-free"
    assert (out / "correlation.md").exists() and (out / "benchmark_study.png").exists()
    assert "decile tau" in r.stdout


@pytest.mark.slow
def test_correlate_benchmark_needs_data_for_a_trained_indicator(tmp_path):
    r = subprocess.run([sys.executable, "-m", "bnnas", "correlate", "--benchmark", "nas-bench-macro", "--space",
                        "spos-small", "--work-dir", str(tmp_path / "x")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    one_line_error(r.returncode, r.stderr, "ranks archs of space 'nas-bench-macro'", "not 'spos-small'")


def _write_cifar_fixture(root, n_train=10, n_test=4):
    """torchvision's CIFAR-10 layout with a few random images (its md5 sums cannot match)."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = {}
    for name, n in [*[(f"data_batch_{i}", n_train // 5) for i in range(1, 6)], ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels[name] = [int(v) for v in rng.integers(0, 10, n)]
        with open(d / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels[name]}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return labels


def test_cifar10_folder_is_checked_by_torchvisions_md5_and_a_fixture_is_refused(tmp_path):
    _write_cifar_fixture(tmp_path)
    with pytest.raises(BNNASError, match="not an intact CIFAR-10.*md5"):
        build_classification_data(str(tmp_path))


def test_cifar10_folder_reads_through_torchvision(tmp_path, monkeypatch):
    labels = _write_cifar_fixture(tmp_path)
    # the one thing bypassed: torchvision's md5 check, which no hand-made fixture can pass (tested above)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    for path in (tmp_path, tmp_path / "cifar-10-batches-py"):
        data = build_classification_data(str(path), holdout=2)
        assert data.name == "cifar10" and data.num_classes == 10 and data.input_size == 32
        assert len(data.train) == 8 and len(data.heldout) == 2 and len(data.val) == 4
        x, y = data.val[0]
        assert tuple(x.shape) == (3, 32, 32) and y == labels["test_batch"][0]
