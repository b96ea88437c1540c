#!/usr/bin/env python
"""Which supernet recipe lets BN-only training learn on the built-in data? Runs tools/search.py once per candidate
and tabulates final train accuracy, op-score spread and time (the table in docs/bn_only_recipe.md).

Result: the candidate tables of docs/bn_only_recipe.md, and docs/results/nas-bench-macro/recipe.json (the rows of
the nas-bench-macro candidates). Rewrite them with:

    python experiments/bn_only_recipe.py --epochs 3 --out runs/recipe_study   # the spos-small table
    python experiments/bn_only_recipe.py --limit-train 4000 --epochs 3 --out runs/recipe_nbm --only nbm-paper,nbm-gamma0,nbm-gamma0-bnall,nbm-res-gamma0,nbm-res-gamma0-bnall

(recipe.json holds the rows of the second command's runs/recipe_nbm/study.json, without their work_dir.)

Other uses:

    python experiments/bn_only_recipe.py --epochs 5 --out runs/recipe_study      # every candidate, ~30 min on 2 cores
    python experiments/bn_only_recipe.py --only paper,small-data --seeds 0,1,2   # a subset, several seeds

Every candidate sees the same 12000 Fashion-MNIST training images (``--limit-train``) and the same step count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--lr", "0.5", "--batch-size", "64"]
# name -> (what changes, flags on top of the common ones)
CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "paper": ("the paper's recipe: spos-small, gamma 1, LR rule 0.05 at batch 32", ["--recipe", "paper"]),
    "paper-lr0.5": ("+ LR 0.5, batch 64", ["--recipe", "paper", *FAST]),
    "paper-lr0.5-bnall": ("+ every BN trains", ["--recipe", "paper", *FAST, "--bn-params", "all"]),
    "paper-lr0.5-gamma0": ("+ residual branches start closed (gamma 0)", ["--recipe", "paper", *FAST, "--gamma-init", "0"]),
    "res-gamma1": ("fixed transitions (spos-small-res), gamma 1", ["--recipe", "small-data", "--gamma-init", "1"]),
    "small-data": ("fixed transitions + gamma 0 (the small-data recipe)", ["--recipe", "small-data"]),
    "small-data-lr0.05": ("small-data with LR 0.05", ["--recipe", "small-data", "--lr", "0.05"]),
    "small-data-b128": ("small-data with batch 128 (half the steps)", ["--recipe", "small-data", "--batch-size", "128"]),
    "small-data-bnall": ("small-data, every BN trains", ["--recipe", "small-data", "--bn-params", "all"]),
}
NBM = ["--space", "nas-bench-macro", "--flops", "55"]
NBM_RES = ["--space", "nas-bench-macro-res", "--flops", "55"]
# the same questions in NAS-Bench-Macro, whose width-doubling layers are searchable (a 1x1-conv identity, k3e3, k5e6)
NBM_CANDIDATES: dict[str, tuple[str, list[str]]] = {
    "nbm-paper": ("the paper's recipe in nas-bench-macro: gamma 1, LR rule 0.05 at batch 32, last BNs",
                  ["--recipe", "paper", *NBM]),
    "nbm-paper-lr0.5": ("+ LR 0.5, batch 64", ["--recipe", "paper", *NBM, *FAST]),
    "nbm-gamma0": ("+ residual branches start closed (gamma 0), searchable transitions",
                   ["--recipe", "small-data", *NBM]),
    "nbm-gamma0-bnall": ("+ every BN trains", ["--recipe", "small-data", *NBM, "--bn-params", "all"]),
    "nbm-res-gamma0": ("transitions fixed to k3e3 (nas-bench-macro-res) + gamma 0", ["--recipe", "small-data", *NBM_RES]),
    "nbm-res-gamma0-bnall": ("fixed transitions + gamma 0, every BN trains",
                             ["--recipe", "small-data", *NBM_RES, "--bn-params", "all"]),
}
CANDIDATES.update(NBM_CANDIDATES)


def run_one(name: str, flags: list[str], seed: int, epochs: int, out: Path, limit_train: int) -> dict:
    wd = out / f"{name}-s{seed}"
    if not (wd / "summary.json").is_file():
        cmd = [sys.executable, str(ROOT / "tools/search.py"), "--data", "fashion-mnist", "--limit-train", str(limit_train),
               "--epochs", str(epochs), "--seed", str(seed), "--search", "exact", "--quiet", "--work-dir", str(wd),
               *flags]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    s = json.loads((wd / "summary.json").read_text())
    e = s["evidence"]
    return {"name": name, "seed": seed, "train_acc": e["final_train_acc"],
            "spread": f"{e['spread_layers']}/{e['searchable_layers']}", "seconds": s["supernet_seconds"],
            "arch": " ".join(s["arch"]), "work_dir": str(wd)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", default="0")
    p.add_argument("--only", default=None, help="comma list of candidates (default: all spos-small ones)")
    p.add_argument("--limit-train", type=int, default=12000, help="Fashion-MNIST training images per run")
    p.add_argument("--out", type=Path, default=Path("runs/recipe_study"))
    args = p.parse_args()
    names = args.only.split(",") if args.only else [n for n in CANDIDATES if n not in NBM_CANDIDATES]
    rows = []
    for name in names:
        for seed in [int(s) for s in args.seeds.split(",")]:
            r = run_one(name, CANDIDATES[name][1], seed, args.epochs, args.out, args.limit_train)
            rows.append(r)
            print(f"| {name} | {CANDIDATES[name][0]} | {seed} | {100 * r['train_acc']:.1f} | {r['spread']} | "
                  f"{r['seconds']:.0f} |", flush=True)
    (args.out / "study.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
