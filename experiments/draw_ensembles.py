#!/usr/bin/env python
"""Do draw ensembles help? BN-only supernets that differ only in their random init, op scores averaged over R of them.

Result: docs/results/nas-bench-macro-fmnist/draws.json, draws.md and draw_tables.json (cited in
docs/indicator_trust.md, "Draw ensembles"). Rewrite it with:

    python experiments/draw_ensembles.py train [--draws 8]     # resumable: each draw has its own work dir
    python experiments/draw_ensembles.py analyse               # seconds: agreement and tau against both ground truths
    python experiments/draw_ensembles.py analyse --tables docs/results/nas-bench-macro-fmnist/draw_tables.json

Each draw trains the small-data BN recipe (gamma0, every BN) on nas-bench-macro-res-half with the same data order and
path sampling; only the frozen random convolutions differ. An R-ensemble averages the draws' op scores z-scored
within each layer. Measured for R = 1, 2, 4 over every split of the draws into two disjoint R-ensembles:
agreement between the two (per-layer sign of k5e6 - k3e3, per-layer tau over all three ops, the exact search's arch
at the default budget), and tau of each ensemble's arch scores against the in-domain Fashion-MNIST table and the
CIFAR-10 table (overall and inside FLOPs deciles). Writes docs/results/nas-bench-macro-fmnist/draws.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnas.benchmarks import load_benchmark  # noqa: E402
from bnnas.core.flops import flops_table  # noqa: E402
from bnnas.core.space import get_space  # noqa: E402
from bnnas.core.supernet import Supernet  # noqa: E402
from bnnas.data import build_classification_data  # noqa: E402
from bnnas.indicators.bn import ScoreTable, bn_score_table  # noqa: E402
from bnnas.search.exact import exact_search  # noqa: E402
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer  # noqa: E402
from bnnas.trust.studies.benchmark.benchmark_stats import flops_deciles, within_decile_tau  # noqa: E402
from bnnas.trust.rank_stats import kendall_tau  # noqa: E402

SPACE = "nas-bench-macro-res-half"
OUT = Path(__file__).resolve().parents[1] / "docs/results/nas-bench-macro-fmnist"
RS = (1, 2, 4)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    space = get_space(SPACE)
    data = build_classification_data("fashion-mnist", space.input_size, limit_train=args.images)
    cfg = SupernetTrainConfig(epochs=args.epochs, batch_size=64, lr=0.5, train_mode="bn", bn_params="all",
                              gamma_init=0.0, seed=0, workers=0)
    tables = {}
    for d in range(args.draws):
        t0 = time.perf_counter()
        torch.manual_seed(1000 + d)  # the draw: only the random init differs between supernets
        model = Supernet(space)
        trainer = SupernetTrainer(model, data, cfg, Path(args.work_dir) / f"draw{d}", torch.device("cpu"),
                                  show_progress=False)
        res = trainer.fit(trainer.existing_checkpoint())
        tables[d] = bn_score_table(model).scores.tolist()
        print(f"draw {d}: train acc {res.history[-1].train_acc:.3f}  {time.perf_counter() - t0:.0f}s", flush=True)
    doc = {"space": SPACE, "epochs": args.epochs, "images": args.images, "recipe": "bn-only, every BN, gamma0, lr 0.5",
           "tables": tables}
    (Path(args.work_dir) / "tables.json").write_text(json.dumps(doc))


def zscored(scores: np.ndarray) -> np.ndarray:
    """Each searchable layer's scores as z-scores over its choices (fixed layers: 0)."""
    out = np.where(np.isnan(scores), np.nan, 0.0)
    for li, row in enumerate(scores):
        ok = ~np.isnan(row)
        if ok.sum() > 1 and row[ok].std() > 0:
            out[li, ok] = (row[ok] - row[ok].mean()) / row[ok].std()
    return out


def ensemble(tables: list[np.ndarray]) -> np.ndarray:
    return np.mean([zscored(t) for t in tables], 0)


def splits(n: int, r: int, limit: int, rng: np.random.Generator) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Pairs of disjoint r-subsets of range(n) (all of them, or ``limit`` drawn at random)."""
    pairs = [(a, b) for a in itertools.combinations(range(n), r) for b in itertools.combinations(range(n), r)
             if a < b and not set(a) & set(b)]
    if len(pairs) > limit:
        pairs = [pairs[i] for i in rng.choice(len(pairs), limit, replace=False)]
    return pairs


def agreement(a: np.ndarray, b: np.ndarray, space, budget: float) -> dict:
    rows = [li for li, layer in enumerate(space.layers) if layer.searchable]
    # the two BN ops of a layer (k3e3, k5e6: choices 1 and 2): does each ensemble order them the same way?
    sign = np.mean([np.sign(a[li, 2] - a[li, 1]) == np.sign(b[li, 2] - b[li, 1]) for li in rows])
    tau = np.mean([kendall_tau(a[li], b[li]) for li in rows])
    cost = flops_table(space)
    arch_a = exact_search(ScoreTable(a), cost, budget).choices
    arch_b = exact_search(ScoreTable(b), cost, budget).choices
    same = np.mean([arch_a[li] == arch_b[li] for li in rows])
    return {"bn_op_order": float(sign), "layer_tau": float(tau), "arch_layers_same": float(same)}


def analyse(args: argparse.Namespace) -> None:
    space = get_space(SPACE)
    doc = json.loads(Path(args.tables or Path(args.work_dir) / "tables.json").read_text())
    tables = [np.array(doc["tables"][str(d)], dtype=np.float64) for d in range(len(doc["tables"]))]
    fm = load_benchmark("nas-bench-macro-fmnist")
    c10 = load_benchmark("nas-bench-macro").restricted_to(space)
    rng = np.random.default_rng(0)
    rows = {}
    for r in RS:
        if 2 * r > len(tables):
            continue
        agree, truth = [], []
        for a, b in splits(len(tables), r, args.splits, rng):
            za, zb = ensemble([tables[i] for i in a]), ensemble([tables[i] for i in b])
            agree.append(agreement(za, zb, space, space.default_budget * 1e6))
            for z in (za, zb):
                truth.append(_truth(z, fm, c10))
        rows[r] = {"splits": len(agree), **_summary(agree), **_summary(truth)}
    searchable = [li for li, layer in enumerate(space.layers) if layer.searchable]
    # per layer: in how many draws k5e6 (choice 2) outscores k3e3 (choice 1); 0 or all = an op-type signal
    wins = {str(li): int(sum(t[li, 2] > t[li, 1] for t in tables)) for li in searchable}
    result = {"space": SPACE, "draws": len(tables), "supernet": {k: v for k, v in doc.items() if k != "tables"},
              "budget_mflops": space.default_budget, "k5e6_beats_k3e3_in_draws": wins, "by_r": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "draws.json").write_text(json.dumps(result, indent=2) + "\n")
    cols = ["bn_op_order", "layer_tau", "arch_layers_same", "fashion-mnist_tau", "fashion-mnist_band_tau",
            "cifar-10_tau", "cifar-10_decile_tau"]
    md = ["| R | splits | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for r, row in rows.items():
        md.append(f"| {r} | {row['splits']} | " + " | ".join(f"{row[c][0]:+.2f} ± {row[c][1]:.2f}" for c in cols) + " |")
    md += ["", f"Draws (of {len(tables)}) in which k5e6 outscores k3e3, per searchable layer: "
           + ", ".join(f"layer {li}: {n}" for li, n in wins.items())]
    (OUT / "draws.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def _truth(z: np.ndarray, fm, c10) -> dict:
    s_fm = ScoreTable(z).batch(fm.choices)
    band = fm.band
    s_c = ScoreTable(z).batch(c10.choices)
    return {"fashion-mnist_tau": kendall_tau(s_fm, fm.mean_acc),
            "fashion-mnist_band_tau": kendall_tau(s_fm[band], fm.mean_acc[band]),
            "cifar-10_tau": kendall_tau(s_c, c10.mean_acc),
            "cifar-10_decile_tau": within_decile_tau(s_c, c10.mean_acc, flops_deciles(c10.flops))[0]}


def _summary(recs: list[dict]) -> dict:
    return {k: [float(np.nanmean([r[k] for r in recs])), float(np.nanstd([r[k] for r in recs]))] for k in recs[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("train", "analyse"))
    p.add_argument("--draws", type=int, default=8)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--splits", type=int, default=35, help="disjoint ensemble pairs per R (at most)")
    p.add_argument("--work-dir", default="runs/draws")
    p.add_argument("--tables", default=None,
                   help="analyse these op-score tables (default: WORK_DIR/tables.json; the committed ones: "
                        "docs/results/nas-bench-macro-fmnist/draw_tables.json)")
    args = p.parse_args()
    train(args) if args.what == "train" else analyse(args)


if __name__ == "__main__":
    main()
