"""The search's flags and the supernet settings they give: ``bnnas search`` reads them, and the early-bird comparison
(``bnnas correlate early-bird``) takes every one of them, so it trains exactly what a search trains."""

from __future__ import annotations

import argparse

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.defaults import RECIPES, pick
from bnnas.core.space import list_spaces
from bnnas.search import EvolutionConfig
from bnnas.training.supernet_trainer import TRAIN_MODES, SupernetTrainConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The search flags (also the early-bird comparison's, which must train exactly what a search trains)."""
    g = p.add_argument_group("data and space")
    flags.add(g, "data")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="small-data: spos-small-res space, residual branches start closed (gamma 0), the default on "
                        "built-in data; paper: the paper's space and gamma 1, the default on folders")
    g.add_argument("--space", default=None, help=f"search space, overrides the recipe's: {', '.join(list_spaces())}, "
                                                  "or a space file (.yaml/.json, docs/spaces.md)")
    g.add_argument("--holdout", type=cli.nonneg_int, default=0,
                   help="training images held out for the spos-acc indicator")
    flags.add(g, "limit-train",
              help="train the supernet on this many training images (the same for every seed); overrides the "
                   "recipe's (small-data: 12000 of Fashion-MNIST's 60000, so 10 epochs fit in minutes on a CPU)")
    g = p.add_argument_group("supernet")
    g.add_argument("--supernet", default=None, help="reuse a trained supernet checkpoint instead of training")
    flags.add(g, "epochs", default=10, help="supernet epochs (paper: 10 for SPOS, 15 for FairNAS)")
    flags.add(g, "batch-size", help="per-process batch (default: the recipe's; paper: 32 built-in data, 256 folder)")
    flags.add(g, "lr", help="peak LR (default: the recipe's; paper: 0.8 * global batch / 1024, >= 0.05)")
    g.add_argument("--warmup-epochs", type=cli.nonneg_float, default=None, help="default: min(5, 10%% of epochs)")
    g.add_argument("--sampler", choices=["spos", "fairnas"], default="spos", help="path sampling policy")
    g.add_argument("--train-mode", choices=list(TRAIN_MODES), default="bn",
                   help="bn: only BN trains (the paper); bn-transitions: also every weight of the searchable layers "
                        "that change width or stride; all: every parameter")
    g.add_argument("--bn-params", choices=["last", "all"], default="last",
                   help="in bn mode, train only each op's last BN (official code) or every BN")
    g.add_argument("--gamma-init", type=cli.nonneg_float, default=None,
                   help="initial gamma of each residual candidate's indicator BN, overrides the recipe's (paper: 1)")
    g.add_argument("--early-bird", action="store_true", help="stop training once the op ranking settles")
    g.add_argument("--eb-threshold", type=cli.fraction, default=0.95,
                   help="op-ranking similarity of consecutive epochs that counts as settled")
    g.add_argument("--eb-patience", type=cli.positive_int, default=3,
                   help="consecutive comparisons that must reach --eb-threshold")
    flags.add(g, "workers")
    g.add_argument("--ckpt-every", type=cli.nonneg_int, default=0, help="also checkpoint every N steps")
    g.add_argument("--no-resume", action="store_true", help="refuse to resume (error if the work dir has a run)")
    g = p.add_argument_group("search")
    g.add_argument("--flops", type=cli.positive_float, default=None,
                   help="budget in MFLOPs (default: the space's)")
    g.add_argument("--latency", type=cli.positive_float, default=None,
                   help="budget in ms, per-op latency measured on --device")
    g.add_argument("--latency-runtime", choices=["torch", "onnxruntime"], default="torch",
                   help="with --latency: time the ops in eager PyTorch or in onnxruntime (CPU)")
    g.add_argument("--indicator", default="bn", help="bn (BN-NAS) or spos-acc (SPOS accuracy, needs held-out data)")
    g.add_argument("--search", default="exact,evolution,random",
                   help="comma list of exact, evolution, random; the arch comes from the first one listed")
    g.add_argument("--population", type=cli.positive_int, default=EvolutionConfig.population,
                   help="evolution: subnets per generation")
    g.add_argument("--iterations", type=cli.positive_int, default=EvolutionConfig.iterations,
                   help="evolution: generations")
    g.add_argument("--samples", type=cli.positive_int, default=1000, help="random search samples")
    g = p.add_argument_group("run")
    flags.add_run(g, "runs/search", "seed", "device")
    g.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    for name in ("threads", "quiet", "debug"):
        flags.add(g, name)


def supernet_config(args: argparse.Namespace, world_size: int) -> SupernetTrainConfig:
    """The supernet's training settings from resolved search flags (see ``resolve_recipe``)."""
    cfg = SupernetTrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, sampler=args.sampler, train_mode=args.train_mode, bn_params=args.bn_params,
        gamma_init=args.gamma_init,
        seed=args.seed, workers=pick(args.workers, "supernet", "workers", args.data),
        amp=not args.no_amp, ckpt_every=args.ckpt_every, world_size=world_size)
    return cfg
