"""``bnnas retrain`` / ``tools/retrain.py``: retrain a searched architecture from scratch and evaluate it."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.defaults import BUILTIN, describe, for_kind, retrain_config
from bnnas.core.arch import load_arch
from bnnas.core.flops import subnet_cost
from bnnas.data import build_classification_data, is_builtin
from bnnas.errors import BNNASError
from bnnas.outputs.workdir import hold_work_dir
from bnnas.training.distributed import init_distributed
from bnnas.training.retrainer import LAST_NAME, RetrainConfig, Retrainer, log


DESCRIPTION = "Retrain a searched architecture from scratch and evaluate top-1/top-5."


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = RetrainConfig()  # the recipe's defaults live in the config, the flags only show them
    g = p.add_argument_group("model and data")
    g.add_argument("--arch", required=True,
                   help="arch.json from tools/search.py, or a preset: bnnas-spos, spos, abs-fairnas")
    g.add_argument("--se", action="store_true", help="add squeeze-excitation to every MBConv (the paper's +SE model)")
    flags.add(g, "data")
    flags.add(g, "limit-train")
    g.add_argument("--input-size", type=cli.int_at_least(8), default=None,
                   help="training/eval resolution (default: the arch's space, e.g. 32 spos-small, 224 spos-imagenet)")
    g = p.add_argument_group("recipe")
    flags.add(g, "epochs", help=f"default: {describe('retrain', 'epochs')} (the paper's schedule)")
    flags.add(g, "batch-size", help=f"per process (default: {describe('retrain', 'batch_size')})")
    flags.add(g, "lr", help=f"peak LR (default: {for_kind('retrain', BUILTIN, 'lr')} on built-in data; "
                            "0.5 x global batch / 1024 on a folder)")
    g.add_argument("--warmup-epochs", type=cli.nonneg_float, default=None, help="default: min(5, 10%% of epochs)")
    g.add_argument("--schedule", choices=["cosine", "linear"], default=d.schedule,
                   help="decay after warm-up: cosine (paper) or linear (official code)")
    g.add_argument("--weight-decay", type=cli.nonneg_float, default=d.weight_decay, help="on conv/FC weights only")
    g.add_argument("--label-smoothing", type=cli.nonneg_float, default=d.label_smoothing,
                   help="of the cross-entropy targets")
    g.add_argument("--dropout", type=cli.nonneg_float, default=d.dropout, help="before the classifier")
    g.add_argument("--grad-clip-norm", type=cli.nonneg_float, default=d.grad_clip_norm,
                   help="clip the gradients' global L2 norm at this (0 = off)")
    g.add_argument("--ema", action="store_true", help="keep a timm ModelEmaV3 average; evaluate and save it as best")
    g.add_argument("--ema-decay", type=cli.unit_float, default=d.ema_decay, help="per step, with --ema")
    g = p.add_argument_group("run")
    flags.add(g, "work-dir", default="runs/retrain")
    g.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help="resume from CKPT, or (no value) from WORK_DIR/last.pth, failing if it is absent; without "
                   "--resume an existing WORK_DIR/last.pth is resumed automatically")
    g.add_argument("--no-resume", action="store_true", help="refuse to resume (error if the work dir has a run)")
    g.add_argument("--ckpt-every", type=cli.nonneg_int, default=d.ckpt_every, help="also write last.pth every N steps")
    for name in ("workers", "threads", "seed", "device"):
        flags.add(g, name)
    g.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    flags.add(g, "quiet")
    flags.add(g, "debug")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


def config_from_args(args: argparse.Namespace, world_size: int, input_size: int) -> RetrainConfig:
    """The retraining recipe; flags left unset take the table's defaults for the data (built-in or a folder)."""
    return retrain_config(
        args.data, input_size, world_size, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, schedule=args.schedule, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, dropout=args.dropout, grad_clip_norm=args.grad_clip_norm, se=args.se,
        ema=args.ema, ema_decay=args.ema_decay, seed=args.seed, workers=args.workers, amp=not args.no_amp,
        ckpt_every=args.ckpt_every)


@cli.with_exit_stack
def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    if args.resume is not None and args.no_resume:
        raise BNNASError("--resume and --no-resume contradict each other")
    arch = load_arch(args.arch)  # checked before anything is created or trained
    work_dir = Path(args.work_dir)
    if args.resume not in (None, "auto") and not Path(args.resume).is_file():
        raise BNNASError(f"--resume checkpoint not found: {args.resume}")
    if args.resume == "auto" and not (work_dir / LAST_NAME).is_file():  # checked again under the lock
        raise BNNASError(f"--resume: no {LAST_NAME} in {work_dir}")
    if args.no_resume and (work_dir / LAST_NAME).is_file():
        raise BNNASError(f"{work_dir / LAST_NAME} exists and --no-resume was given; choose another --work-dir")
    dist, device = init_distributed(args.device)
    builtin = is_builtin(args.data)
    cli.set_threads(args.threads, args.data, device)
    input_size = args.input_size or arch.space.input_size
    data = build_classification_data(args.data, input_size, 0, args.seed, limit_train=args.limit_train)
    searched_classes = arch.space.num_classes
    if arch.space.num_classes != data.num_classes:
        arch = load_arch(args.arch, num_classes=data.num_classes)
    cfg = config_from_args(args, dist.world_size, input_size)
    trainer = Retrainer(arch, data, cfg, work_dir, device, dist, show_progress=not args.quiet)  # validates cfg

    # everything checked: only now the work dir is created, locked and logged to
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # lock, log.txt, crash leftovers
    if searched_classes != data.num_classes:
        log.info("arch %s was searched for %d classes; retraining with a %d-class classifier for %r",
                 arch.space.name, searched_classes, data.num_classes, data.name)
    if builtin and input_size > 64:
        log.warning("training the small built-in %s images upscaled to %dpx (the %s space's size) is slow on CPU; "
                    "--input-size 32 is enough for them", data.name, input_size, arch.space.name)
    resume_from: Path | None = None
    if args.resume not in (None, "auto"):
        resume_from = Path(args.resume)
    elif (work_dir / LAST_NAME).is_file():
        if args.no_resume:
            raise BNNASError(f"{work_dir / LAST_NAME} exists and --no-resume was given; choose another --work-dir")
        resume_from = work_dir / LAST_NAME
    elif args.resume == "auto":
        raise BNNASError(f"--resume: no {LAST_NAME} in {work_dir}")
    flops, params = subnet_cost(arch, cfg.se)
    log.info("retraining %s%s: %.2f MFLOPs at %dpx, %.3f M params; %d epochs x %d steps, global batch %d, "
             "peak LR %.4g (%s), on %s x%d", arch.describe(), " +SE" if cfg.se else "", flops / 1e6,
             arch.space.input_size, params / 1e6, cfg.epochs, trainer.steps_per_epoch, cfg.batch_size * dist.world_size,
             cfg.peak_lr(), cfg.schedule, device, dist.world_size)
    trainer.fit(resume_from)
    if not dist.is_main:
        return {}
    trainer.write_metrics()
    s = trainer.summary()
    fl = f"{s['flops_m']:.2f} MFLOPs at {s['flops_resolution']}px"
    if s["input_size"] != s["flops_resolution"]:
        fl += f" ({s['flops_m_at_input_size']:.2f} at {s['input_size']}px)"
    print(f"retrain done: best top-1 {100 * s['best_top1']:.2f}% (top-5 {100 * s['best_top5']:.2f}%, epoch "
          f"{s['best_epoch']}/{s['epochs']}) on {s['data']} | params {s['params_m']:.3f} M | {fl} | "
          f"{s['seconds']:.0f}s | {trainer.best_path}")
    return s


def main(argv: list[str] | None = None) -> int:
    """``tools/retrain.py``: parse ``argv``, run, return the exit code (2 with one ``error:`` line on bad input)."""
    return cli.main(build_parser(), run, argv)
