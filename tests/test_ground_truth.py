"""Our own ground truth: the key draw, the resumable trainer (killed for real), the table format, its quality checks,
and the committed Fashion-MNIST table."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bnnas.benchmarks import BENCHMARKS, canonical_key, load_benchmark
from bnnas.benchmarks.table import DATA_DIR, table_from_dict
from bnnas.core.arch import Arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import get_space
from bnnas.trust.studies.benchmark.ground_truth import GroundTruthConfig, select_keys, work_items
from bnnas.trust.studies.benchmark.table_quality import table_quality
from conftest import write_fake_fashion

ROOT = Path(__file__).resolve().parents[1]
SPACE = "nas-bench-macro-res-half"


def test_band_keys_sit_in_the_band_and_spread_keys_reach_both_ends():
    space = get_space(SPACE)
    cfg = GroundTruthConfig(band=8, spread=8, band_width=0.08)
    band, spread = select_keys(space, cfg)
    ft = flops_table(space)
    flops = {k: ft.of(Arch.from_key(space, k).choices) for k in band + spread}
    every = [ft.of(Arch.from_key(space, k).choices) for k in _all_distinct(space)]
    median = np.median(every)
    assert len(set(band)) == 8 and len(set(spread)) == 8 and not set(band) & set(spread)
    assert all(abs(flops[k] / median - 1) <= 0.08 for k in band)
    assert all(abs(flops[k] / median - 1) > 0.08 for k in spread)
    assert min(flops[k] for k in spread) == min(every) and max(flops[k] for k in spread) == max(every)
    assert all(canonical_key(space, k) == k for k in band + spread)  # no two keys are the same network


def _all_distinct(space):
    import itertools

    keys = [Arch(space, c).benchmark_key for c in itertools.product(*[range(len(l.choices)) for l in space.layers])]
    return [k for k in keys if canonical_key(space, k) == k]


def test_the_pilot_comes_first_then_seed_by_seed():
    space = get_space(SPACE)
    items = work_items(space, GroundTruthConfig(band=8, spread=4, band_seeds=3, spread_seeds=2, pilot=4))
    assert len(items) == 8 * 3 + 4 * 2
    pilot = items[:8]
    assert {it.seed for it in pilot} == {0, 1} and len({it.key for it in pilot}) == 4
    assert all(it.group == "band" for it in pilot)
    rest_seeds = [it.seed for it in items[8:]]
    assert rest_seeds == sorted(rest_seeds)


def _table(accs: dict[str, list[float]], groups: dict[str, str]) -> dict:
    space = get_space(SPACE)
    ft, pt = flops_table(space), params_table(space)
    rows = {}
    for k, a in accs.items():
        c = Arch.from_key(space, k).choices
        rows[k] = {"test_acc": a, "mean_acc": float(np.mean(a)), "flops": int(ft.of(c)), "params": int(pt.of(c)),
                   "group": groups[k]}
    return {"meta": {"format": "bnnas.ground-truth/1"}, "archs": rows}


KEYS = ["10100100", "10110100", "11110100", "11111100", "11111110", "11111111"]


def test_our_table_format_loads_with_ragged_seeds_and_a_band():
    info = BENCHMARKS["nas-bench-macro-fmnist"]
    raw = _table({k: [50.0 + i, 51.0 + i, 52.0 + i][: 3 if i < 3 else 2] for i, k in enumerate(KEYS)},
                 {k: "band" if i < 3 else "spread" for i, k in enumerate(KEYS)})
    t = table_from_dict(info, raw)
    assert t.accs.shape == (6, 3) and np.isnan(t.accs[3:, 2]).all() and not np.isnan(t.accs[:3]).any()
    assert t.band.tolist() == [k in KEYS[:3] for k in t.keys]
    assert t.subset(t.band).groups == ("band",) * 3


def test_quality_of_a_table_whose_band_is_flat_but_whose_spread_is_not():
    rng = np.random.default_rng(0)
    means = {k: 60.0 + 5 * i for i, k in enumerate(KEYS)}
    band = set(KEYS[2:5])
    # band archs share one mean (only seed noise); the others are 5 pp apart, far beyond it
    accs = {k: [(70.0 if k in band else means[k]) + rng.normal(0, 0.3) for _ in range(3)] for k in KEYS}
    t = table_from_dict(BENCHMARKS["nas-bench-macro-fmnist"],
                        _table(accs, {k: "band" if k in band else "spread" for k in KEYS}))
    ref = load_benchmark("nas-bench-macro")
    q = table_quality(t, ref, resamples=200)
    assert q["seed_agreement"]["kendall_tau"] > 0.5
    assert q["band_headroom"]["differ"] is False and q["band_headroom"]["archs"] == 3
    r = q["reference_agreement"]
    assert r["keys"] == 6 and r["band"]["keys"] == 3
    published = [ref.mean_acc[ref.row(k)] for k in t.keys]
    from scipy.stats import kendalltau

    assert r["kendall_tau"] == pytest.approx(kendalltau(t.mean_acc, published).statistic)


def _run(work: Path, fashion: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "BNNAS_FASHION_MNIST": str(fashion), "BNNAS_CACHE": str(work.parent / "cache")}
    cmd = [sys.executable, "-m", "bnnas", "ground-truth", "--keys", ",".join(KEYS[:3]), "--band-seeds", "2",
           "--epochs", "1", "--batch-size", "16", "--train-images", "64", "--test-images", "32", "--work-dir",
           str(work), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.slow
def test_a_killed_ground_truth_resumes_to_the_uninterrupted_table(tmp_path):
    fashion = write_fake_fashion(tmp_path / "fashion-mnist", 200, 40)
    straight = _run(tmp_path / "straight", fashion)
    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out
    want = json.loads((tmp_path / "straight" / "ground_truth.json").read_text())

    work = tmp_path / "killed"
    proc = _run(work, fashion)
    results = work / "results.rank0.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 2):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = results.read_text().count("\n")
    assert 2 <= done < 6, "the kill came after the run had finished"
    resumed = _run(work, fashion)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert f"{done} of 6 trainings done" in out
    got = json.loads((work / "ground_truth.json").read_text())
    for k in KEYS[:3]:
        assert got["archs"][k]["test_acc"] == want["archs"][k]["test_acc"]
        assert len(got["archs"][k]["test_acc"]) == 2


@pytest.mark.slow
def test_a_bad_key_is_one_line_and_trains_nothing(tmp_path):
    from conftest import one_line_error

    p = subprocess.run([sys.executable, "-m", "bnnas", "ground-truth", "--keys", "1010010", "--work-dir",
                        str(tmp_path / "w")], capture_output=True, text=True)
    one_line_error(p.returncode, p.stderr, "1010010")
    assert not (tmp_path / "w").exists()
    p = subprocess.run([sys.executable, "-m", "bnnas", "ground-truth", "--space", "spos-small", "--work-dir",
                        str(tmp_path / "w")], capture_output=True, text=True)
    one_line_error(p.returncode, p.stderr, "spos-small", "nas-bench-macro-fmnist")
    assert not (tmp_path / "w").exists()


# -- the committed table ------------------------------------------------------------------------------------------------
def test_the_committed_fashion_mnist_table_is_what_its_meta_says():
    info = BENCHMARKS["nas-bench-macro-fmnist"]
    raw = json.loads((DATA_DIR / info.file).read_text())
    meta, t = raw["meta"], load_benchmark("nas-bench-macro-fmnist")
    space = get_space(info.space)
    cfg = meta["config"]
    assert meta["dataset"] == "fashion-mnist" and meta["space"] == info.space == t.space.name
    assert meta["command"].startswith("bnnas ground-truth")
    assert meta["recipe"]["lr"] == 0.1 and meta["recipe"]["momentum"] == 0.9 and meta["recipe"]["weight_decay"] == 5e-4
    assert int(t.band.sum()) == cfg["band"] and len(t) == cfg["band"] + cfg["spread"]
    band, spread = select_keys(space, GroundTruthConfig(**{k: v for k, v in cfg.items() if k != "keys"}))
    assert sorted(band) == sorted(meta["band"]) and sorted(band + spread) == sorted(t.keys)
    ft, pt = flops_table(space), params_table(space)
    for i, k in enumerate(t.keys):
        c = Arch.from_key(space, k).choices
        assert t.flops[i] == ft.of(c) and t.params[i] == pt.of(c)
        seeds = cfg["band_seeds"] if t.band[i] else cfg["spread_seeds"]
        assert np.isfinite(t.accs[i]).sum() == seeds
        assert 10.0 < t.mean_acc[i] < 100.0
    assert t.mean_acc == pytest.approx(np.nanmean(t.accs, 1), abs=1e-3)


@pytest.mark.slow
def test_correlate_reads_our_table_with_its_band_and_its_own_quality(tmp_path):
    from scipy.stats import kendalltau

    out = tmp_path / "fm"
    r = subprocess.run([sys.executable, "-m", "bnnas", "correlate", "--benchmark", "nas-bench-macro-fmnist",
                        "--indicators", "flops", "--bootstrap", "50", "--work-dir", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "correlation.json").read_text())
    t = load_benchmark("nas-bench-macro-fmnist")
    band = doc["indicators"]["flops"]["band"]
    assert band["n"] == int(t.band.sum())
    assert band["kendall_tau"] == pytest.approx(kendalltau(t.flops[t.band], t.mean_acc[t.band]).statistic)
    q = doc["table_quality"]
    seeds = int(np.isfinite(t.accs).sum(1).min())
    assert q["seed_agreement"]["repeats"] == seeds and q["band_seed_agreement"]["repeats"] >= seeds
    assert q["band_headroom"]["archs"] == int(t.band.sum())
    assert q["reference_agreement"]["reference"] == "nas-bench-macro" and q["reference_agreement"]["keys"] == len(t)
    md = (out / "correlation.md").read_text()
    assert "The ground truth itself" in md and "band tau" in md
    assert len(doc["table_points"]["accs"]) == len(t) and (out / "benchmark_study.png").stat().st_size > 10_000


def test_a_search_in_the_half_width_space_reads_our_table():
    from bnnas.cli.search_report import _benchmark_line, _published

    space = get_space(SPACE)
    t = load_benchmark("nas-bench-macro-fmnist")
    inside = _published(Arch.from_key(space, t.keys[0]), None)
    assert inside["acc"] == t.mean_acc[0] and inside["archs"] == len(t)
    line = _benchmark_line(inside, "fashion-mnist")
    assert "nas-bench-macro-fmnist" in line and "proxy data" not in line  # in-domain: searched on its own data
    missing = next(Arch(space, c) for c in np.ndindex(*[len(l.choices) for l in space.layers])
                   if Arch(space, c).benchmark_key not in t.keys)
    assert "is not among the 16 archs" in _benchmark_line(_published(missing, 12e6), "fashion-mnist")
