"""``bnnas stability`` / ``tools/stability.py RUN_DIR ...``: do search runs that differ only in their seed agree?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.core.arch import load_arch
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.errors import BNNASError
from bnnas.trust.verdicts.evidence import bn_free_mask, seed_agreement
from bnnas.training.supernet_trainer import scores_from_record


def load_run(run: Path):
    """(arch, final L x N op-score table) of a tools/search.py work dir."""
    if not (run / "arch.json").is_file() or not (run / "op_scores.json").is_file():
        raise BNNASError(f"{run} is not a finished search run (needs arch.json and op_scores.json)")
    arch = load_arch(run / "arch.json")
    doc = json.loads((run / "op_scores.json").read_text())
    if not doc.get("epochs"):
        raise BNNASError(f"{run / 'op_scores.json'} holds no epoch")
    return arch, scores_from_record(doc["epochs"][-1])


def run(args: argparse.Namespace) -> dict:
    if len(args.runs) < 2:
        raise BNNASError("give at least two run directories")
    loaded = [load_run(r) for r in args.runs]
    spaces = {a.space.name for a, _ in loaded}
    if len(spaces) != 1:
        raise BNNASError(f"the runs searched different spaces ({', '.join(sorted(spaces))})")
    result = seed_agreement([t for _, t in loaded], [list(a.choices) for a, _ in loaded],
                            bn_free_mask(loaded[0][0].space))
    for run_dir, (arch, _) in zip(args.runs, loaded):
        print(f"{run_dir}: {' '.join(arch.ops)}")
    d = result.to_dict()
    print(f"{d['runs']} runs: mean per-layer tau {d['mean_tau']:.3f} (BN ops only {d['mean_tau_bn_ops']:.3f}), "
          f"arch agreement {d['arch_agreement']:.3f}, top-op agreement {d['best_op_agreement']:.3f}")
    print(result.verdict)
    if args.out is not None:
        atomic_write_text(args.out, json.dumps({**d, "run_dirs": [str(r) for r in args.runs]}, indent=2) + "\n")
    return d


DESCRIPTION = ("Agreement of search runs that differ only in their seed: per-layer Kendall tau of the op scores and "
               "the share of layers their archs agree on.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, help="tools/search.py work dirs (two or more)")
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    flags.add(p, "debug")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    """``tools/stability.py``: parse ``argv``, compare the runs, return the exit code."""
    return cli.main(build_parser(), run, argv)
