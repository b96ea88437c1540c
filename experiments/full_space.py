#!/usr/bin/env python
"""Can a cheap indicator beat counting layers in the full NAS-Bench-Macro space (6561 keys, searchable transitions)?

Trains BN-family supernet variants on Fashion-MNIST (proxy data for the CIFAR-10 table), one ``bnnas search`` run
each (resumable: a re-run continues from the run's ``supernet.pth``), scores every key of the published table with
each supernet's BN indicator, the structural rules and rank ensembles, and writes the records and the table:

    python experiments/full_space.py train --variant trans-bnall --seed 0      # one supernet (resumable)
    python experiments/full_space.py score                                       # rewrites the result files
    python experiments/full_space.py curve --run half-trans-bnall-fair-e24-n4000-s0   # decile tau per epoch, plotted

``docs/results/nas-bench-macro/full_space.json`` holds ``{"indicator", "supernet_seed", "scores": {key: score}}``
records with a score for every key, so every tau can be recomputed from the published table alone;
``res_space.json`` holds the same for the 243 keys of ``nas-bench-macro-res`` (transitions fixed to k3e3), and
``full_space.md`` is the table behind ``docs/bn_only_recipe.md`` and ``docs/indicator_trust.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bnnas.benchmarks import BenchmarkTable, load_benchmark  # noqa: E402
from bnnas.core.supernet import Supernet  # noqa: E402
from bnnas.core.space import get_space  # noqa: E402
from bnnas.indicators.bn import ScoreTable, bn_score_table  # noqa: E402
from bnnas.indicators.registry import STRUCTURAL, build_indicator  # noqa: E402
from bnnas.training.supernet_trainer import load_supernet, scores_from_record  # noqa: E402
from bnnas.trust.studies.benchmark.benchmark_stats import bootstrap_ranking_stats, ranking_stats  # noqa: E402

RUNS = ROOT / "runs" / "full_space"
RESULTS = ROOT / "docs" / "results" / "nas-bench-macro"
COMMON = ["--data", "fashion-mnist", "--recipe", "small-data", "--search", "exact", "--quiet"]
# name -> (what changes, space, flags on top of COMMON); small-data: gamma0 0 on residual branches, LR 0.5, batch 64
VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "gamma0-bnall": ("searchable transitions, every BN trains, gamma0 0 (the last round's best here)",
                     "nas-bench-macro", ["--bn-params", "all"]),
    "trans": ("+ the transition ops' own weights train, last BNs only", "nas-bench-macro",
              ["--train-mode", "bn-transitions"]),
    "trans-bnall": ("+ the transition ops' own weights train, every BN trains", "nas-bench-macro",
                    ["--train-mode", "bn-transitions", "--bn-params", "all"]),
    "trans-bnall-fair": ("trans-bnall with FairNAS strict-fair sampling", "nas-bench-macro",
                         ["--train-mode", "bn-transitions", "--bn-params", "all", "--sampler", "fairnas"]),
    "half-gamma0-bnall": ("gamma0-bnall at half width, 28 px", "nas-bench-macro-half", ["--bn-params", "all"]),
    "half-trans-bnall": ("trans-bnall at half width, 28 px", "nas-bench-macro-half",
                         ["--train-mode", "bn-transitions", "--bn-params", "all"]),
    "half-trans": ("trans at half width, 28 px", "nas-bench-macro-half", ["--train-mode", "bn-transitions"]),
    "half-res-gamma0-bnall": ("nas-bench-macro-res (transitions fixed to k3e3) at half width: the -res recipe",
                              "nas-bench-macro-res-half", ["--bn-params", "all"]),
    "half-trans-fair": ("half-trans with FairNAS sampling", "nas-bench-macro-half",
                        ["--train-mode", "bn-transitions", "--sampler", "fairnas"]),
    "half-trans-bnall-fair": ("half-trans-bnall with FairNAS sampling", "nas-bench-macro-half",
                              ["--train-mode", "bn-transitions", "--bn-params", "all", "--sampler", "fairnas"]),
}
RESAMPLES = 300


def run_dir(variant: str, seed: int, epochs: int, images: int) -> Path:
    return RUNS / f"{variant}-e{epochs}-n{images}-s{seed}"


def train(variant: str, seed: int, epochs: int, images: int) -> Path:
    """One supernet through the product's own command; a finished run is reused, a stopped one resumed."""
    _, space, flags = VARIANTS[variant]
    wd = run_dir(variant, seed, epochs, images)
    if not (wd / "summary.json").is_file():
        cmd = [sys.executable, "-m", "bnnas", "search", *COMMON, "--space", space, "--epochs", str(epochs),
               "--limit-train", str(images), "--seed", str(seed), "--work-dir", str(wd), *flags]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return wd


def rank(v: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), so an ensemble of ranks treats tied archs alike."""
    from scipy.stats import rankdata

    return rankdata(v)


def layer_scaled(scores: np.ndarray) -> np.ndarray:
    """Each layer's op scores min-max scaled to [0, 1]: where a layer has no skip its gamma level is set by trained
    weights, not by use, so only the order and relative gaps of its ops compare across layers."""
    lo, hi = np.nanmin(scores, 1, keepdims=True), np.nanmax(scores, 1, keepdims=True)
    return (scores - lo) / np.where(hi > lo, hi - lo, 1.0)


def structural_records(table: BenchmarkTable) -> list[dict]:
    """FLOPs, the registered structural rules (depth-largest third: the ensembles' partner) and one post-hoc rule."""
    sup = Supernet(table.space)
    out = [{"indicator": name, "supernet_seed": None, "scores": build_indicator(name, sup).batch(table.choices)}
           for name in ("flops", *STRUCTURAL)]
    # post hoc (suggested by the table's own per-layer means, so not a fair baseline): depth-largest, remaining ties
    # broken towards non-identity ops in earlier layers
    n = table.choices.shape[1]
    earlier = ((table.choices > 0) * (n - np.arange(n))).sum(1)
    out.append({"indicator": "depth-largest-earlier (post hoc)", "supernet_seed": None,
                "scores": out[-1]["scores"] * 100 + earlier})
    return out


def supernet_records(table: BenchmarkTable, spaces: tuple[str, ...]) -> list[dict]:
    """Every finished run in one of ``spaces``: its BN indicator, as the paper reads it and layer-scaled, on every
    key, with what the run cost and learnt."""
    out = []
    for wd in sorted(RUNS.glob("*/summary.json")):
        summary = json.loads(wd.read_text())
        model, ckpt = load_supernet(wd.parent / "supernet.pth")
        if model.space.name not in spaces:
            continue
        cfg = ckpt.get("config", {})
        run = {"supernet_seed": int(cfg.get("seed", 0)), "train_acc": summary["evidence"]["final_train_acc"],
               "supernet_seconds": summary["supernet_seconds"], "space": model.space.name,
               "epochs": cfg.get("epochs"), "train_mode": cfg.get("train_mode"), "bn_params": cfg.get("bn_params"),
               "sampler": cfg.get("sampler")}
        variant = wd.parent.name.rsplit("-s", 1)[0]
        raw = bn_score_table(model).scores
        for form, table_scores in (("bn", raw), ("bn-scaled", layer_scaled(raw))):
            out.append({"indicator": f"{form}:{variant}", **run,
                        "scores": ScoreTable(table_scores).batch(table.choices)})
    return out


def measure(scores: np.ndarray, table: BenchmarkTable, seed: int = 0) -> dict:
    res = ranking_stats(scores, table.mean_acc, table.flops)
    res["ci"] = bootstrap_ranking_stats(scores, table.mean_acc, table.flops, RESAMPLES, seed)
    return res


def _row(name: str, r: dict, s: dict) -> str:
    ci = s["ci"]["decile_tau_ci"]
    picks = " / ".join(f"{b['pick_percentile']:.0f}" for b in s["budgets"])
    acc = f"{100 * r['train_acc']:.1f}" if "train_acc" in r else ""
    seed = "" if r.get("supernet_seed") is None else str(r["supernet_seed"])
    return (f"| {name} | {seed} | {acc} | {r.get('supernet_seconds', 0):.0f} | {s['kendall_tau']:+.3f} "
            f"| {s['decile_tau']:+.3f} [{ci[0]:+.2f}, {ci[1]:+.2f}] | {picks} |")


def _seed_summary(records: list[dict]) -> list[str]:
    """Mean and sd of decile tau over supernet seeds, for every indicator with more than one."""
    by: dict[str, list[float]] = {}
    for r in records:
        if r.get("supernet_seed") is not None:
            by.setdefault(r["indicator"], []).append(r["stats"]["decile_tau"])
    out = ["| indicator | seeds | decile tau, mean +- sd over supernet seeds |", "|---|---|---|"]
    out += [f"| {k} | {len(v)} | {np.mean(v):+.3f} +- {np.std(v, ddof=1):.3f} |" for k, v in by.items() if len(v) > 1]
    return out


def score_study(name: str, table: BenchmarkTable, spaces: tuple[str, ...]) -> list[str]:
    """Score ``table``'s keys with the free rules and every run's indicators; write ``NAME.json`` (records with a
    score for every key) and return the markdown table, rank ensembles with depth-largest included."""
    records = structural_records(table) + supernet_records(table, spaces)
    best_rule = rank(records[2]["scores"])  # depth-largest
    ensembles = [{**r, "indicator": r["indicator"] + " + depth-largest", "scores": (rank(r["scores"]) + best_rule) / 2}
                 for r in records if r.get("supernet_seed") is not None]
    for r in records + ensembles:
        r["stats"] = measure(np.asarray(r["scores"], dtype=np.float64), table)
    meta = ("supernet_seed", "space", "epochs", "train_mode", "bn_params", "sampler", "train_acc", "supernet_seconds")
    doc = [{"indicator": r["indicator"], **{k: r[k] for k in meta if k in r},
            "scores": {key: float(f"{s:.7g}") for key, s in zip(table.keys, np.asarray(r["scores"]))}}
           for r in records]
    (RESULTS / f"{name}.json").write_text(json.dumps(doc) + "\n")
    head = ["| indicator | supernet seed | train acc % | supernet s | tau | decile tau [95% CI] | picks @25/50/75 % |",
            "|---|---|---|---|---|---|---|"]
    return [f"## {name}: {len(table)} keys", "", *head, *(_row(r["indicator"], r, r["stats"]) for r in records), "",
            "Rank ensembles (mean of the two ranks; recomputable from the two records):", "", *head,
            *(_row(r["indicator"], r, r["stats"]) for r in ensembles), "", *_seed_summary(records + ensembles), ""]


def score(_args: argparse.Namespace) -> int:
    published = load_benchmark("nas-bench-macro")
    res = published.restricted_to(get_space("nas-bench-macro-res"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = ["# BN-family indicators and free rules on NAS-Bench-Macro (proxy data: Fashion-MNIST)", "",
          "Rewritten by `python experiments/full_space.py score` from the runs under `runs/full_space/`. Decile tau: "
          "mean Kendall tau inside the ten FLOPs deciles; picks: percentile, among the archs within 10 % below the "
          "25/50/75 % FLOPs quantile, of the arch ranked highest there. Brackets: bootstrap 95 % CI over archs "
          f"({RESAMPLES} resamples).", ""]
    md += score_study("full_space", published, ("nas-bench-macro", "nas-bench-macro-half"))
    md += score_study("res_space", res, ("nas-bench-macro-res", "nas-bench-macro-res-half"))
    (RESULTS / "full_space.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def curve(args: argparse.Namespace) -> int:
    """Decile tau of every epoch's op scores of one run (BN as read and layer-scaled) against the free rules: how the
    ranking moves with the schedule, read from the run's op_scores.json (no training)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = load_benchmark("nas-bench-macro")
    run = RUNS / args.run
    epochs = json.loads((run / "op_scores.json").read_text())["epochs"]
    rows = []
    for rec in epochs:
        raw = scores_from_record(rec)
        rows.append({"epoch": rec["epoch"], "train_acc": rec["train_acc"],
                     **{form: ranking_stats(ScoreTable(t).batch(table.choices), table.mean_acc, table.flops)[
                         "decile_tau"] for form, t in (("bn", raw), ("bn-scaled", layer_scaled(raw)))}})
    rules = {r["indicator"]: ranking_stats(r["scores"], table.mean_acc, table.flops)["decile_tau"]
             for r in structural_records(table)[1:3]}
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ep = [r["epoch"] for r in rows]
    for form, style in (("bn", "o-"), ("bn-scaled", "s-")):
        ax.plot(ep, [r[form] for r in rows], style, ms=3, label=f"{form} ({args.run})")
    for (name, tau), ls in zip(rules.items(), (":", "--")):
        ax.axhline(tau, color="grey", ls=ls, label=f"{name} {tau:+.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("decile tau vs CIFAR-10 table")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "full_space_epochs.png", dpi=120)
    (RESULTS / "full_space_epochs.json").write_text(json.dumps({"run": args.run, "rules": rules, "epochs": rows},
                                                               indent=1) + "\n")
    print("\n".join(f"epoch {r['epoch']:2d}  train acc {100 * r['train_acc']:.1f}  bn {r['bn']:+.3f}  "
                    f"bn-scaled {r['bn-scaled']:+.3f}" for r in rows))
    return 0


def naswot(args: argparse.Namespace) -> int:
    """naswot@init on a FLOPs-stratified sample of keys (it scores one path at a time, too slow for 6561 keys on a
    CPU), then its rank ensembles with every BN-family record and depth-largest on the same keys."""
    import torch

    from bnnas.data import build_classification_data
    from bnnas.trust.studies.benchmark.benchmark_study import stratified_rows

    table = load_benchmark("nas-bench-macro")
    rows = stratified_rows(table, args.sample, 0)
    torch.manual_seed(0)
    space = get_space(args.space, 10)
    data = build_classification_data("fashion-mnist", space.input_size)  # one minibatch of it, for naswot
    cache = RESULTS / "full_space_naswot.json"
    sub = table.subset(rows)
    old = json.loads(cache.read_text()) if cache.is_file() else {}
    if old.get("keys") == list(sub.keys) and old.get("space") == args.space:  # naswot is the slow part: reuse it
        scores = np.asarray(old["naswot"])
    else:
        scores = build_indicator("naswot", Supernet(space), data=data, seed=0)(table.choices[rows])
    records = json.loads((RESULTS / "full_space.json").read_text())
    out = {"sample": int(len(rows)), "space": args.space, "keys": list(sub.keys), "naswot": scores.tolist(),
           "decile_tau": {}}

    def tau(v: np.ndarray) -> list[float]:
        ci = bootstrap_ranking_stats(v, sub.mean_acc, sub.flops, RESAMPLES, 0)["decile_tau_ci"]
        return [ranking_stats(v, sub.mean_acc, sub.flops)["decile_tau"], *ci]

    out["decile_tau"]["naswot@init"] = tau(scores)
    for r in records:
        mine = np.array([r["scores"][k] for k in sub.keys])
        name = r["indicator"] + ("" if r.get("supernet_seed") is None else f" s{r['supernet_seed']}")
        out["decile_tau"][name] = tau(mine)
        out["decile_tau"][name + " + naswot"] = tau(rank(mine) + rank(scores))
    (RESULTS / "full_space_naswot.json").write_text(json.dumps(out, indent=1) + "\n")
    for k, (v, lo, hi) in out["decile_tau"].items():
        print(f"{v:+.3f} [{lo:+.2f}, {hi:+.2f}]  {k}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one supernet variant (resumable)")
    t.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--images", type=int, default=4000, help="Fashion-MNIST training images")
    sub.add_parser("score", help="score every key with every finished supernet; write the records and the table")
    c = sub.add_parser("curve", help="decile tau of every epoch of one run, plotted against the free rules")
    c.add_argument("--run", required=True, help="a run folder's name under runs/full_space/")
    n = sub.add_parser("naswot", help="naswot@init on a stratified sample and its rank ensembles (after score)")
    n.add_argument("--sample", type=int, default=200)
    n.add_argument("--space", default="nas-bench-macro-half", help="the space whose fresh supernet naswot reads")
    args = p.parse_args()
    if args.cmd == "naswot":
        return naswot(args)
    if args.cmd == "curve":
        return curve(args)
    if args.cmd == "train":
        print(train(args.variant, args.seed, args.epochs, args.images))
        return 0
    return score(args)


if __name__ == "__main__":
    sys.exit(main())
