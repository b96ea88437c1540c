"""``bnnas ground-truth`` / ``tools/ground_truth.py``: train archs of a benchmark space on built-in data, write the table.

    bnnas ground-truth                                   # the committed Fashion-MNIST table (2.5 CPU-hours)
    torchrun --nproc-per-node 2 -m bnnas ground-truth    # the same, two processes taking turns down the list
    bnnas ground-truth --keys 10122110,12122122 --epochs 2 --train-images 2000   # a quick table of two keys

A killed run resumes where it stopped (each finished training is kept in --work-dir); the table is written at the end
to --work-dir/ground_truth.json and --out. ``bnnas correlate --benchmark nas-bench-macro-fmnist`` reads the shipped one.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.benchmarks.table import BENCHMARKS
from bnnas.core.arch import Arch
from bnnas.core.space import get_space
from bnnas.data import build_classification_data
from bnnas.data.datasets import BUILTIN_DATASETS, is_builtin
from bnnas.errors import BNNASError
from bnnas.outputs.workdir import hold_work_dir
from bnnas.training.distributed import init_distributed
from bnnas.trust.studies.benchmark.ground_truth import GroundTruthConfig, TableTarget
from bnnas.trust.studies.benchmark.ground_truth import run as run_ground_truth

DEFAULT_BENCHMARK = "nas-bench-macro-fmnist"


def _builtin_name(dataset: str) -> str:
    name = dataset.lower()
    if not is_builtin(name):
        raise BNNASError(f"a ground truth trains on built-in data ({', '.join(BUILTIN_DATASETS)}), not {dataset}")
    return name


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = GroundTruthConfig()
    p.add_argument("--benchmark", default=DEFAULT_BENCHMARK,
                   help="the table to (re)make; its space and data set come from bnnas.benchmarks")
    p.add_argument("--space", default=None, help="space to draw and train keys in (default: the benchmark's)")
    p.add_argument("--keys", default=None, help="comma-separated keys instead of the band + spread draw")
    p.add_argument("--band", type=cli.nonneg_int, default=d.band, help="distinct networks inside the FLOPs band")
    p.add_argument("--spread", type=cli.nonneg_int, default=d.spread, help="distinct networks outside it")
    p.add_argument("--band-width", type=cli.positive_float, default=d.band_width,
                   help="the band: median FLOPs x (1 +- this)")
    p.add_argument("--band-seeds", type=cli.positive_int, default=d.band_seeds, help="training seeds per band key")
    p.add_argument("--spread-seeds", type=cli.positive_int, default=d.spread_seeds, help="training seeds per spread key")
    flags.add(p, "epochs", default=d.epochs, help="training epochs (benchmark recipe: SGD 0.1, cosine, wd 5e-4)")
    flags.add(p, "batch-size", default=d.batch_size)
    p.add_argument("--train-images", type=cli.positive_int, default=d.train_images,
                   help="a fixed random subset of the training split, the same for every arch and seed")
    p.add_argument("--test-images", type=cli.positive_int, default=d.test_images,
                   help="evaluate on the first N test images (default: all)")
    flags.add(p, "seed", help="seed of the key draw and the image subset")
    p.add_argument("--out", default=None, help="also write the table here (default: only --work-dir)")
    flags.add_run(p, "runs/ground_truth", "device", "threads", "quiet", "debug")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


@cli.with_exit_stack
def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict | None:
    if args.benchmark not in BENCHMARKS:
        raise BNNASError(f"unknown benchmark {args.benchmark!r}; known: {', '.join(sorted(BENCHMARKS))}")
    info = BENCHMARKS[args.benchmark]
    space = get_space(args.space or info.space)
    if space.benchmark != args.benchmark:
        raise BNNASError(f"--space {space.name} does not encode keys of {args.benchmark} (its spaces: "
                         f"{info.space} and those that fix some of its layers)")
    keys = tuple(k.strip() for k in args.keys.split(",") if k.strip()) if args.keys else ()
    for k in keys:
        Arch.from_key(space, k)  # a bad key is a one-line error before anything trains
    cfg = GroundTruthConfig(band=args.band, spread=args.spread, band_width=args.band_width,
                            band_seeds=args.band_seeds, spread_seeds=args.spread_seeds, epochs=args.epochs,
                            batch_size=args.batch_size, train_images=args.train_images,
                            test_images=args.test_images, seed=args.seed, keys=keys)
    cfg.validate()
    dist, device = init_distributed(args.device)
    work = Path(args.work_dir)
    hold_work_dir(stack, work, dist.is_main, dist.enabled)
    cli.set_threads(args.threads, "fashion-mnist", device)
    data = build_classification_data(_builtin_name(info.dataset), space.input_size)
    given = sys.argv[sys.argv.index("ground-truth") + 1:] if "ground-truth" in sys.argv else sys.argv[1:]
    command = shlex.join(["bnnas", "ground-truth", *given])
    target = TableTarget(args.benchmark, command, Path(args.out) if args.out else None)
    return run_ground_truth(space, data, cfg, work, target, device, dist)


def main(argv: list[str] | None = None) -> int:
    """``tools/ground_truth.py``: parse ``argv``, run, return the exit code (2 with one ``error:`` line on bad input)."""
    return cli.main(build_parser(), run, argv)
