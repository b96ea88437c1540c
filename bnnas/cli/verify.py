"""``bnnas verify`` / ``tools/verify.py``: does the searched arch beat random archs of the same budget?"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.defaults import describe, retrain_config
from bnnas.core.arch import load_arch
from bnnas.errors import BNNASError
from bnnas.outputs.workdir import hold_work_dir
from bnnas.training.distributed import init_distributed
from bnnas.trust.verdicts.verify import DEFAULT_EPOCHS, VerifyConfig
from bnnas.trust.verdicts.verify import run as run_verify

DESCRIPTION = ("Retrain the searched arch and N random archs of the same FLOPs budget on one short schedule with S "
               "seeds, and say whether the search beats random on held-out (val) accuracy, and whether the random "
               "archs differ beyond seed noise at all.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = VerifyConfig()
    p.add_argument("--arch", required=True, help="arch.json from tools/search.py (or a preset name)")
    p.add_argument("--random", type=cli.positive_int, default=d.random,
                   help="random archs drawn uniformly under the same budget")
    p.add_argument("--seeds", type=cli.positive_int, default=d.seeds,
                   help="training seeds per arch (0..S-1); >= 2 also tests whether the random archs differ")
    flags.add(p, "epochs", default=DEFAULT_EPOCHS, help="retraining epochs (the same for every run)")
    flags.add(p, "data")
    p.add_argument("--train-subset", type=cli.positive_int, default=d.train_subset,
                   help="train on a fixed random subset of K training images (fast check)")
    p.add_argument("--flops", type=cli.positive_float, default=d.flops_m,
                   help="budget in MFLOPs for the random archs (default: the search's, from arch.json)")
    p.add_argument("--sample-seed", type=cli.nonneg_int, default=d.sample_seed, help="seed of the random-arch draw")
    flags.add(p, "batch-size", help=f"as tools/retrain.py ({describe('retrain', 'batch_size')})")
    flags.add(p, "lr", help="peak LR, as tools/retrain.py")
    flags.add_run(p, "runs/verify", "device", "threads", "workers", "quiet", "debug")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


@cli.with_exit_stack
def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    arch = load_arch(args.arch)  # checked before anything is created or trained
    dist, device = init_distributed(args.device)
    if dist.enabled:
        raise BNNASError("verify runs in one process; start it with python, not torchrun")
    # the recipe tools/retrain.py would use for these flags, at the arch's resolution
    recipe = retrain_config(args.data, arch.space.input_size, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, workers=args.workers)
    plan = VerifyConfig(random=args.random, seeds=args.seeds, train_subset=args.train_subset, flops_m=args.flops,
                        sample_seed=args.sample_seed, show_progress=not args.quiet)
    work = Path(args.work_dir)
    hold_work_dir(stack, work)  # lock, log.txt, crash leftovers
    cli.set_threads(args.threads, args.data, device)
    return run_verify(args.arch, args.data, plan, recipe, device, work)


def main(argv: list[str] | None = None) -> int:
    """``tools/verify.py``: parse ``argv``, run, return the exit code (2 with one ``error:`` line on bad input)."""
    return cli.main(build_parser(), run, argv)
