"""``bnnas verify`` / ``tools/verify.py``: does the searched arch beat random archs of the same budget?"""

from __future__ import annotations

import argparse
import math

import bnnas.cli.common as cli
from bnnas.errors import BNNASError
from bnnas.trust.verify import DEFAULT_EPOCHS, run as _run


# -- command line ----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        description="Retrain the searched arch and N random archs of the same FLOPs budget on one short schedule "
                    "with S seeds, and say whether the search beats random on held-out (val) accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--arch", required=True, help="arch.json from tools/search.py (or a preset name)")
    p.add_argument("--random", type=int, default=5, help="random archs drawn uniformly under the same budget")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per arch (0..S-1)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="retraining epochs (the same for every run)")
    p.add_argument("--data", default=None, help="fashion-mnist, digits, or an ImageNet-style folder "
                   "(default: Fashion-MNIST when installed, else the digits)")
    p.add_argument("--train-subset", type=int, default=None,
                   help="train on a fixed random subset of K training images (fast check)")
    p.add_argument("--flops", type=float, default=None,
                   help="budget in MFLOPs for the random archs (default: the search's, from arch.json)")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the random-arch draw")
    p.add_argument("--batch-size", type=int, default=None, help="as tools/retrain.py (64 built-in data, 128 folder)")
    p.add_argument("--lr", type=float, default=None, help="peak LR, as tools/retrain.py")
    p.add_argument("--work-dir", default="runs/verify")
    p.add_argument("--device", type=cli.device, default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default 1 on built-in data on CPU)")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default 0 built-in, 8 folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    cli.add_debug(p)
    return p


def _check_args(args: argparse.Namespace) -> None:
    for flag, v in (("--random", args.random), ("--seeds", args.seeds), ("--epochs", args.epochs),
                    ("--train-subset", args.train_subset), ("--threads", args.threads)):
        if v is not None and v < 1:
            raise BNNASError(f"{flag} must be >= 1 (got {v})")
    if args.flops is not None and not (math.isfinite(args.flops) and args.flops > 0):
        raise BNNASError(f"--flops must be a positive number of MFLOPs (got {args.flops})")


def run(args: argparse.Namespace) -> dict:
    _check_args(args)
    return _run(args)


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, argv)
