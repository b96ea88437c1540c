"""tools/verify.py and bnnas.trust.verdicts.verify: statistics on hand-made accuracies (the headroom test included), the
random-arch draw, the report of a run whose trainings are replaced by hand-made accuracies, and one tiny CLI run with
its resume. The CLI run trains 3 cheap spos-small archs (<= 4 MFLOPs) for 1 epoch on 64 digits (single-threaded)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from scipy import stats

from bnnas.core.arch import Arch, save_arch
from bnnas.errors import BNNASError
from bnnas.core.flops import flops_table
from bnnas.core.space import get_space
import bnnas.trust.verdicts.verify as verify
from bnnas.cli.verify import main
from bnnas.trust.verdicts.headroom import headroom
from bnnas.trust.verdicts.verify import arch_stats, draw_random_archs, fmt_ci, summarize

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "verify.py"


def cheapest_arch(num_classes: int = 10) -> Arch:
    space = get_space("spos-small", num_classes)
    return Arch(space, tuple(l.choices.index("id") if "id" in l.choices else 0 for l in space.layers))


def t_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval, straight from the textbook formula."""
    n, m = len(values), statistics.fmean(values)
    sem = statistics.stdev(values) / math.sqrt(n)
    lo, hi = stats.t.interval(0.95, n - 1, loc=m, scale=sem)
    return m, (hi - lo) / 2


SEARCHED = {0: 0.90, 1: 0.92, 2: 0.94}
RANDOM = {"random0": {0: 0.80, 1: 0.82}, "random1": {0: 0.85, 1: 0.83}, "random2": {0: 0.70, 1: 0.74}}


def test_means_and_t_intervals():
    st = summarize(SEARCHED, RANDOM)
    m, half = t_ci(list(SEARCHED.values()))
    assert st.searched.mean == pytest.approx(m) and st.searched.ci95 == pytest.approx(half)
    assert st.searched.ci95 == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)  # t_0.975,2 = 4.3027
    for r in st.random:
        m, half = t_ci(list(RANDOM[r.name].values()))
        assert r.mean == pytest.approx(m) and r.ci95 == pytest.approx(half) and r.n == 2
    means = [0.81, 0.84, 0.72]
    m, half = t_ci(means)
    assert st.pool.mean == pytest.approx(m) and st.pool.ci95 == pytest.approx(half)
    assert st.pool_median == pytest.approx(0.81) and st.pool_std == pytest.approx(statistics.stdev(means))


def test_target_percentile_and_verdict_when_search_wins():
    st = summarize(SEARCHED, RANDOM)
    assert st.percentile == pytest.approx(100.0)
    assert st.target == pytest.approx(0.81 + statistics.stdev([0.81, 0.84, 0.72]))
    assert st.target_met and st.beats and not st.untrained
    assert st.verdict.startswith("search beats random")


def test_verdict_when_search_is_in_the_middle():
    st = summarize({0: 0.82, 1: 0.82}, RANDOM)  # above 0.81 and 0.72, below 0.84
    assert st.percentile == pytest.approx(200 / 3)
    assert st.target_met is False and not st.beats
    assert st.verdict.startswith("no evidence the search beats random (searched at percentile 67)")
    assert st.best_random == "random1" and st.gap == pytest.approx(0.82 - 0.84)


def test_one_seed_has_no_interval():
    st = summarize({0: 0.95}, {"a": {0: 0.80}, "b": {0: 0.90}, "c": {0: 0.85}})
    assert st.searched.ci95 is None and st.searched.std is None and all(r.ci95 is None for r in st.random)
    assert "CI undefined" in fmt_ci(st.searched)
    m, half = t_ci([0.80, 0.90, 0.85])  # the pool still has 3 arch means
    assert st.pool.mean == pytest.approx(m) and st.pool.ci95 == pytest.approx(half)
    assert st.beats and st.percentile == 100.0


def test_honest_edge_cases():
    tie = summarize({0: 0.5}, {"a": {0: 0.5}, "b": {0: 0.5}})  # no spread: a tie must not pass the target
    assert tie.target == pytest.approx(0.5) and not tie.target_met and not tie.beats
    one = summarize({0: 0.9}, {"a": {0: 0.5}})
    assert one.target is None and one.target_met is None and not one.beats and "--random >= 2" in one.verdict
    chance = summarize({0: 0.11}, {"a": {0: 0.10}, "b": {0: 0.10}, "c": {0: 0.09}}, chance=0.1)
    assert chance.target_met and chance.untrained and not chance.beats
    assert chance.verdict.startswith("no evidence the search beats random") and "chance" in chance.verdict
    assert arch_stats("x", {3: 0.5, 1: 0.7}).accs == {1: 0.7, 3: 0.5}


# random archs whose means (0.70 .. 0.90) differ far beyond their seed noise (+-0.005), and archs whose means
# (0.79 .. 0.81) differ less than their seed noise (+-0.02)
DIFFER = {"random0": {0: 0.695, 1: 0.705}, "random1": {0: 0.785, 1: 0.775}, "random2": {0: 0.905, 1: 0.895},
          "random3": {0: 0.855, 1: 0.845}}
FLAT = {"random0": {0: 0.78, 1: 0.82}, "random1": {0: 0.83, 1: 0.79}, "random2": {0: 0.77, 1: 0.81},
        "random3": {0: 0.825, 1: 0.785}}


def variance_components(groups: dict[str, dict[int, float]]) -> tuple[float, float, float]:
    """(F, p, ICC(1)) of a balanced arch x seed table from the textbook variance components."""
    rows = [list(g.values()) for g in groups.values()]
    a, k = len(rows), len(rows[0])
    means = [statistics.fmean(r) for r in rows]
    seed_var = statistics.fmean(statistics.variance(r) for r in rows)  # MS_within
    f = k * statistics.variance(means) / seed_var  # MS_between / MS_within
    arch_var = max(0.0, statistics.variance(means) - seed_var / k)
    return f, float(stats.f.sf(f, a - 1, a * (k - 1))), arch_var / (arch_var + seed_var)


def test_headroom_when_the_random_archs_differ():
    h = headroom([list(g.values()) for g in DIFFER.values()])
    f, p, icc = variance_components(DIFFER)
    assert h.f == pytest.approx(f) and h.p == pytest.approx(p) and h.icc == pytest.approx(icc)
    assert h.differ and h.p < 1e-4 and h.archs == 4 and h.runs == 8
    assert 0.9 < h.icc_ci[0] <= h.icc <= h.icc_ci[1] <= 1.0
    assert h.arch_sd == pytest.approx(statistics.stdev([0.70, 0.78, 0.90, 0.85]))
    assert h.seed_sd == pytest.approx(math.sqrt(statistics.fmean([5e-5] * 4)))
    # a searched arch in the middle of archs that do differ: the search missed
    missed = summarize({0: 0.79, 1: 0.81}, DIFFER)
    assert not missed.beats and missed.outcome == "missed" and missed.verdict.endswith("the search missed")
    assert missed.best_random == "random2" and missed.gap == pytest.approx(0.80 - 0.90)
    wins = summarize({0: 0.95, 1: 0.94}, DIFFER)
    assert wins.beats and wins.outcome == "beats" and wins.gap == pytest.approx(0.945 - 0.90)


def test_no_headroom_when_the_random_archs_agree():
    h = headroom([list(g.values()) for g in FLAT.values()])
    f, p, icc = variance_components(FLAT)
    assert h.f == pytest.approx(f) and h.p == pytest.approx(p) and h.icc == pytest.approx(icc)
    assert not h.differ and h.p > 0.5 and h.icc == 0.0
    # the interval still says how much between-arch variance two seeds cannot rule out
    assert h.icc_ci[0] == 0.0 < h.icc_ci[1] < 1.0
    st = summarize({0: 0.80, 1: 0.81}, FLAT)
    assert not st.beats and st.outcome == "no-headroom"
    assert st.verdict.startswith("no detectable headroom: the random archs of this budget do not differ beyond seed "
                                 "noise on this data")
    assert f"p = {h.p:.2g}" in st.verdict and "cannot show a search's worth" in st.verdict
    one_seed = summarize({0: 0.80}, {name: {0: g[0]} for name, g in FLAT.items()})
    assert one_seed.headroom is None and one_seed.outcome == "untested" and "--seeds >= 2" in one_seed.verdict


def test_verify_report_carries_the_headroom_verdict(tmp_path, monkeypatch, capsys):
    """A whole run, its trainings replaced by the hand-made FLAT accuracies: console, verify.json and verify.md."""
    accs = {"searched": {0: 0.80, 1: 0.81}, **FLAT}

    def fake_train_one(cand, cfg, data, run_dir, device):
        top1 = accs[cand.name][cfg.seed]
        return {"name": cand.name, "seed": cfg.seed, "top1": top1, "best_top1": top1, "epochs": cfg.epochs,
                "seconds": 0.0, "skipped": False}

    monkeypatch.setattr(verify, "train_one", fake_train_one)
    arch_file = tmp_path / "arch.json"
    save_arch(cheapest_arch(), arch_file, found_by={"budget": 6.0, "budget_unit": "MFLOPs", "data": "digits"})
    work = tmp_path / "verify"
    n = torch.get_num_threads()
    try:
        assert main(["--arch", str(arch_file), "--data", "digits", "--random", "4", "--seeds", "2",
                     "--work-dir", str(work), "--quiet"]) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    doc = json.loads((work / "verify.json").read_text())
    st = doc["stats"]
    assert st["outcome"] == "no-headroom" and f"verdict: {st['verdict']}" in out
    assert st["headroom"]["p"] == pytest.approx(headroom([list(g.values()) for g in FLAT.values()]).p)
    assert "headroom: ANOVA over 4 random archs" in out and "gap to the best random arch" in out
    assert f"**Verdict: {st['verdict']}.**" in (work / "verify.md").read_text()


def test_random_archs_feasible_distinct_deterministic():
    searched = cheapest_arch()
    cost, budget = flops_table(searched.space), 6e6
    archs = draw_random_archs(searched, budget, 8, seed=0)
    assert len(archs) == 8
    assert all(cost.of(a.choices) <= budget for a in archs)
    keys = {a.choices for a in archs}
    assert len(keys) == 8 and searched.choices not in keys
    assert [a.choices for a in draw_random_archs(searched, budget, 8, seed=0)] == [a.choices for a in archs]
    assert [a.choices for a in draw_random_archs(searched, budget, 3, seed=0)] == [a.choices for a in archs[:3]]
    assert [a.choices for a in draw_random_archs(searched, budget, 8, seed=1)] != [a.choices for a in archs]
    with pytest.raises(BNNASError, match="distinct archs"):  # at the minimum cost only the searched arch fits
        draw_random_archs(searched, cost.of(searched.choices), 1, seed=0)


@pytest.mark.parametrize("argv,msg", [
    (["--arch", "missing.json"], "arch file not found"),
    (["--random", "0"], "argument --random: must be >= 1"),
    (["--seeds", "0"], "argument --seeds: must be >= 1"),
    (["--epochs", "0"], "argument --epochs: must be >= 1"),
    (["--train-subset", "0"], "argument --train-subset: must be >= 1"),
])
def test_bad_inputs(capsys, tmp_path, argv, msg):
    arch = tmp_path / "arch.json"
    save_arch(cheapest_arch(), arch)
    base = ["--arch", str(arch), "--work-dir", str(tmp_path / "w")]
    argv = [str(tmp_path / a) if a.endswith(".json") else a for a in argv]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_cli_end_to_end_and_resume(tmp_path, capsys):
    arch_file = tmp_path / "arch.json"
    save_arch(cheapest_arch(), arch_file, found_by={"budget": 4.0, "budget_unit": "MFLOPs", "data": "digits",
                                                    "seed": 0})
    work = tmp_path / "verify"
    argv = ["--arch", str(arch_file), "--data", "digits", "--random", "2", "--seeds", "1", "--epochs", "1",
            "--train-subset", "64", "--batch-size", "32", "--work-dir", str(work), "--quiet"]
    r = subprocess.run([sys.executable, str(TOOL), *argv], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("searched", "random0", "random1"):
        assert f"finished {name}/seed0" in r.stdout
    assert "verdict: " in r.stdout and "skipped" not in r.stdout
    assert "headroom: untested (needs >= 2 random archs with >= 2 seeds each)" in r.stdout
    doc = json.loads((work / "verify.json").read_text())
    assert [a["name"] for a in doc["archs"]] == ["searched", "random0", "random1"]
    assert doc["budget_mflops"] == 4.0 and all(a["mflops"] <= 4.0 for a in doc["archs"])
    assert all(0.0 <= a["top1"]["0"] <= 1.0 and len(a["ops"]) == 12 for a in doc["archs"])
    assert doc["stats"]["verdict"] in r.stdout and doc["train_size"] == 64
    assert (work / "verify.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Verdict:" in (work / "verify.md").read_text()

    # resume: finished runs are skipped; a run killed after its last checkpoint but before its result is completed
    # from that checkpoint by the Retrainer
    (work / "random1" / "seed0" / "result.json").unlink()
    n = torch.get_num_threads()
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    assert "skipped (finished) searched/seed0" in out and "skipped (finished) random0/seed0" in out
    assert "finished random1/seed0" in out and "skipped (finished) random1" not in out
    assert "training already finished" in (work / "random1" / "seed0" / "log.txt").read_text()
    again = json.loads((work / "verify.json").read_text())
    assert [a["top1"] for a in again["archs"]] == [a["top1"] for a in doc["archs"]]
