"""``bnnas verify`` / ``tools/verify.py``: does the searched arch beat random archs of the same budget?"""

from __future__ import annotations

import argparse

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.defaults import describe
from bnnas.trust.verify import DEFAULT_EPOCHS, run

DESCRIPTION = ("Retrain the searched arch and N random archs of the same FLOPs budget on one short schedule with S "
               "seeds, and say whether the search beats random on held-out (val) accuracy.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="arch.json from tools/search.py (or a preset name)")
    p.add_argument("--random", type=cli.positive_int, default=5,
                   help="random archs drawn uniformly under the same budget")
    p.add_argument("--seeds", type=cli.positive_int, default=2, help="training seeds per arch (0..S-1)")
    flags.add(p, "epochs", default=DEFAULT_EPOCHS, help="retraining epochs (the same for every run)")
    flags.add(p, "data")
    p.add_argument("--train-subset", type=cli.positive_int, default=None,
                   help="train on a fixed random subset of K training images (fast check)")
    p.add_argument("--flops", type=cli.positive_float, default=None,
                   help="budget in MFLOPs for the random archs (default: the search's, from arch.json)")
    p.add_argument("--sample-seed", type=cli.nonneg_int, default=0, help="seed of the random-arch draw")
    flags.add(p, "batch-size", help=f"as tools/retrain.py ({describe('retrain', 'batch_size')})")
    flags.add(p, "lr", help="peak LR, as tools/retrain.py")
    flags.add_run(p, "runs/verify", "device", "threads", "workers", "quiet", "debug")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    """``tools/verify.py``: parse ``argv``, run, return the exit code (2 with one ``error:`` line on bad input)."""
    return cli.main(build_parser(), run, argv)
