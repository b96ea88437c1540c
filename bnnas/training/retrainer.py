"""Retrain a searched architecture from scratch (stage 3 of one-shot NAS) -- the logic behind ``tools/retrain.py``.

The standalone :class:`~bnnas.core.subnet.SubNet` of an ``arch.json`` (optionally with squeeze-excitation) is trained with
the paper's recipe: Nesterov SGD (momentum 0.9), linear LR warm-up then cosine (paper text) or linear (official
code) decay to 0, weight decay 4e-5 on conv/FC weights only, label smoothing 0.1, dropout 0.2 before the classifier,
gradient *norm* clipped at 5, 240 epochs at full scale, LR scaled linearly with the global batch (0.5 at 1024, the
official code's value). Optional model EMA (timm's ``ModelEmaV3``).

Every epoch ends with a top-1/top-5 evaluation on the val split and writes ``last.pth`` (everything needed to resume)
and, when top-1 improved, ``best.pth``; both atomically and as ``kind="subnet"`` checkpoints carrying the arch, so
``tools/export_backbone.py`` can turn them into detection backbones. The model's own randomness (dropout) is
reseeded from (seed, global step) before every step, so a resumed run reproduces the uninterrupted one bit for bit
on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bnnas.core.arch import Arch, arch_from_dict
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import SPACE_TABLES, SearchSpace, build_space
from bnnas.core.subnet import SubNet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_save, atomic_write_text, load_state_strict
from bnnas.training.distributed import DistInfo
from bnnas.training.engine import build_optimizer, build_scheduler, scaled_lr
from bnnas.training.trainer import EpochRecord, Trainer, log

LAST_NAME, BEST_NAME = "last.pth", "best.pth"
METRICS_NAME, CURVE_NAME = "metrics.json", "training_curve.png"
SUBNET_FORMAT = "bnnas.subnet/1"

DIGITS_EPOCHS = 15  # built-in digits: ~100% val top-1 by epoch 10; ~2 CPU-minutes for a 10 MFLOPs arch
FULL_EPOCHS = 240  # the paper's retraining length


@dataclass
class RetrainConfig:
    epochs: int = FULL_EPOCHS
    batch_size: int = 128  # per process; 8 GPUs x 128 = the official global batch of 1024
    lr: float | None = None  # peak LR; None = 0.5 * global batch / 1024 (official retraining LR at batch 1024)
    warmup_epochs: float | None = None  # None = min(5, 10% of epochs), linear from 0.25 x peak (paper: 0.2 -> 0.8)
    schedule: str = "cosine"  # cosine (paper text) | linear (official code), per iteration, to min_lr
    min_lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 4e-5  # conv/FC weights only
    label_smoothing: float = 0.1
    dropout: float = 0.2
    grad_clip: float = 5.0  # gradient norm (official retraining code); 0 = off
    se: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    input_size: int = 32
    seed: int = 0
    world_size: int = 1
    workers: int = 0
    amp: bool = True  # bf16 autocast on GPU only
    channels_last: bool = True  # on GPU only
    ckpt_every: int = 0  # also write last.pth every N steps (0 = only at epoch ends)

    # Settings that must match for a resumed run to reproduce the uninterrupted one.
    RESUME_KEYS = ("epochs", "batch_size", "lr", "warmup_epochs", "schedule", "min_lr", "momentum", "weight_decay",
                   "label_smoothing", "dropout", "grad_clip", "se", "ema", "ema_decay", "input_size", "seed",
                   "world_size")

    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else scaled_lr(0.5, self.batch_size, self.world_size)

    def warmup(self) -> float:
        return self.warmup_epochs if self.warmup_epochs is not None else min(5.0, 0.1 * self.epochs)

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.batch_size >= 1, f"--batch-size must be >= 1 (got {self.batch_size})"),
            (self.lr is None or (math.isfinite(self.lr) and self.lr > 0), f"--lr must be > 0 (got {self.lr})"),
            (self.warmup_epochs is None or 0 <= self.warmup_epochs < self.epochs,
             f"--warmup-epochs must be in [0, epochs) (got {self.warmup_epochs} for {self.epochs} epochs)"),
            (self.schedule in ("cosine", "linear"), f"unknown --schedule {self.schedule!r}: use cosine or linear"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1) (got {self.dropout})"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0 (got {self.weight_decay})"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0 (got {self.grad_clip})"),
            (0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1) (got {self.ema_decay})"),
            (self.input_size >= 8, f"--input-size must be >= 8 (got {self.input_size})"),
            (self.workers >= 0, f"--workers must be >= 0 (got {self.workers})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BNNASError(msg)


@dataclass
class RetrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_top1: float = 0.0
    best_top5: float = 0.0
    best_epoch: int = 0
    seconds: float = 0.0


def space_at_resolution(space: SearchSpace, input_size: int) -> SearchSpace:
    """The same space (widths, strides, classes) with spatial sizes for ``input_size`` -- for FLOPs at that size."""
    if input_size == space.input_size:
        return space
    table = dataclasses.replace(SPACE_TABLES[space.name], input_size=input_size)
    return build_space(space.name, table, space.num_classes)


def model_cost(arch: Arch, se: bool, input_size: int | None = None) -> tuple[float, float]:
    """(FLOPs, params) of ``SubNet(arch, se)`` (convs in multiply-accumulates), at ``input_size`` (default: the
    space's)."""
    space = space_at_resolution(arch.space, input_size or arch.space.input_size)
    return flops_table(space, se).of(arch.choices), params_table(space, se).of(arch.choices)


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, 0x5EED, step]).generate_state(1)[0])


class Retrainer(Trainer):
    """Trains one subnet with optional EMA; every epoch evaluates on ``data.val`` and keeps the best weights."""

    kind, label, ckpt_name = "subnet", "retrain", LAST_NAME

    def __init__(self, arch: Arch, data: ClassificationData, cfg: RetrainConfig, work_dir: Path,
                 device: torch.device, dist: DistInfo = DistInfo(), show_progress: bool = True):
        cfg.validate()
        if arch.space.num_classes != data.num_classes:
            raise BNNASError(f"arch has {arch.space.num_classes} classes but the data {data.name!r} has "
                             f"{data.num_classes}; load the arch with num_classes={data.num_classes}")
        self.arch = arch
        torch.manual_seed(cfg.seed)
        super().__init__(SubNet(arch, se=cfg.se, dropout=cfg.dropout), data, cfg, device, dist, work_dir,
                         show_progress)
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3

            # decay warm-up (1 - (1 + step)^-2/3, capped at ema_decay) so short runs get a usable average too
            self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True)
        self.optimizer = build_optimizer(self.model, cfg.peak_lr(), cfg.momentum, cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, cfg.epochs * self.steps_per_epoch,
                                         int(round(cfg.warmup() * self.steps_per_epoch)), 0.25 * cfg.peak_lr(),
                                         cfg.min_lr, cfg.schedule)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.clip_norm = cfg.grad_clip
        self.best_top1, self.best_top5, self.best_epoch = -1.0, 0.0, 0

    # -- training ----------------------------------------------------------------------------------------------------
    def _before_step(self) -> None:
        torch.manual_seed(_step_seed(self.cfg.seed, self.global_step))  # dropout: a function of the step only

    def _after_step(self) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step + 1)

    def _epoch_extras(self) -> dict[str, Any]:
        raw = self.evaluate(self.model)
        if self.ema is None:
            return {"val_loss": raw["loss"], "top1": raw["top1"], "top5": raw["top5"]}
        ev = self.evaluate(self.ema.module)
        return {"val_loss": ev["loss"], "top1": ev["top1"], "top5": ev["top5"], "raw_top1": raw["top1"],
                "raw_top5": raw["top5"]}

    def _after_epoch(self, rec: EpochRecord) -> None:
        improved = rec.top1 > self.best_top1
        if improved:
            self.best_top1, self.best_top5, self.best_epoch = rec.top1, rec.top5, rec.epoch
        self.log_epoch(rec, "  *best*" if improved else "")
        # best.pth first: a crash between the two writes then resumes from the previous last.pth and redoes this
        # epoch, which rewrites the same best.pth
        if improved:
            self.save_best(rec)
        if self.dist.is_main:
            self.write_metrics()

    def fit(self, resume_from: Path | None = None, ckpt: dict | None = None,
            stop_at_step: int | None = None) -> RetrainResult:
        """Train to ``cfg.epochs`` (resuming from ``resume_from`` if given). ``stop_at_step`` ends the session early
        once that many steps are done, after writing last.pth (what an interruption at that point leaves behind)."""
        if resume_from is not None:
            self.load(resume_from, ckpt)
        if self.epoch >= self.cfg.epochs:
            log.info("%s: training already finished (%d epochs)", self.last_path, self.epoch)
        self.train_epochs(stop_at_step)
        return RetrainResult(self.history, max(0.0, self.best_top1), self.best_top5, self.best_epoch, self.seconds)

    # -- checkpoints -------------------------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.ckpt_path

    @property
    def best_path(self) -> Path:
        return self.work_dir / BEST_NAME

    def _meta(self) -> dict[str, Any]:
        return {"kind": "subnet", "format": SUBNET_FORMAT, "arch": self.arch.to_dict(), "se": self.cfg.se,
                "num_classes": self.data.num_classes, "input_size": self.cfg.input_size, "data": self.data.name,
                "train_size": len(self.data.train), "data_fingerprint": self.fingerprint, "config": asdict(self.cfg)}

    def _extra_state(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else None
        return {**self._meta(), "ema_state_dict": self.ema.module.state_dict() if self.ema is not None else None,
                "top1": last.top1 if last else None, "top5": last.top5 if last else None,
                "best_top1": self.best_top1, "best_top5": self.best_top5, "best_epoch": self.best_epoch}

    def save_best(self, rec: EpochRecord) -> None:
        if self.dist.is_main:
            model = self.ema.module if self.ema is not None else self.model
            atomic_save({**self._meta(), "state_dict": model.state_dict(), "epoch": rec.epoch, "top1": rec.top1,
                         "top5": rec.top5, "weights": "ema" if self.ema is not None else "model"}, self.best_path)

    def _check_identity(self, ckpt: dict[str, Any], path: Path) -> None:
        """Refuse a checkpoint of another arch, class count or SE setting, or one without training state."""
        if "arch" not in ckpt:
            raise BNNASError(f"{path} has no 'arch' entry; it was not written by tools/retrain.py")
        found = arch_from_dict(ckpt["arch"], f"{path} arch")
        if found.space.num_classes != self.arch.space.num_classes:
            raise BNNASError(f"{path} was trained for {found.space.num_classes} classes but the data {self.data.name!r}"
                             f" has {self.arch.space.num_classes}; use another --work-dir")
        if not found.same_as(self.arch):
            raise BNNASError(f"{path} holds another architecture ({found.describe()}) than --arch "
                             f"({self.arch.describe()}); use another --work-dir")
        if bool(ckpt.get("se")) != self.cfg.se:
            raise BNNASError(f"{path} was trained {'with' if ckpt.get('se') else 'without'} --se; "
                             f"pass the same setting or use another --work-dir")
        if "config" not in ckpt or "optimizer" not in ckpt:
            raise BNNASError(f"{path} is a subnet checkpoint without training state (a best.pth?); "
                             f"resume from a {LAST_NAME}")

    def _load_extra(self, ckpt: dict[str, Any], path: Path) -> None:
        if self.ema is not None:
            load_state_strict(self.ema.module, ckpt["ema_state_dict"], f"{path} (EMA)")
        self.best_top1, self.best_top5, self.best_epoch = ckpt["best_top1"], ckpt["best_top5"], ckpt["best_epoch"]
        log.info("best top-1 so far %.2f%%", 100 * max(0.0, self.best_top1))

    # -- reports -----------------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        flops, params = model_cost(self.arch, self.cfg.se)
        flops_res, _ = model_cost(self.arch, self.cfg.se, self.cfg.input_size)
        n_params = sum(p.numel() for p in self.model.parameters())
        return {
            "arch": self.arch.ops, "space": self.arch.space.name, "se": self.cfg.se, "ema": self.cfg.ema,
            "data": self.data.name, "num_classes": self.data.num_classes, "input_size": self.cfg.input_size,
            "epochs": self.epoch, "best_top1": max(0.0, self.best_top1), "best_top5": self.best_top5,
            "best_epoch": self.best_epoch, "final_top1": self.history[-1].top1 if self.history else None,
            "params_m": round(params / 1e6, 4), "params_counted_m": round(n_params / 1e6, 4),
            "flops_m": round(flops / 1e6, 3), "flops_m_at_input_size": round(flops_res / 1e6, 3),
            "flops_resolution": self.arch.space.input_size, "seconds": round(self.seconds, 2),
            "peak_lr": self.cfg.peak_lr(), "global_batch": self.cfg.batch_size * self.cfg.world_size,
        }

    def write_metrics(self) -> Path:
        doc = {"config": asdict(self.cfg), "summary": self.summary(), "epochs": [h.to_dict() for h in self.history]}
        path = atomic_write_text(self.work_dir / METRICS_NAME, json.dumps(doc, indent=2) + "\n")
        if self.history:
            plot_curve(self.history, self.work_dir / CURVE_NAME, self.cfg.ema)
        return path


def plot_curve(history: list[EpochRecord], path: Path, ema: bool = False) -> Path:
    import bnnas.outputs.plots as plots  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    ep = [h.epoch for h in history]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(ep, [h.train_loss for h in history], "o-", ms=3, label="train loss (smoothed labels)")
    ax.plot(ep, [h.val_loss for h in history], "s-", ms=3, label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=8)
    ax2.plot(ep, [100 * h.top1 for h in history], "o-", ms=3, label="val top-1" + (" (EMA)" if ema else ""))
    ax2.plot(ep, [100 * h.top5 for h in history], "s--", ms=3, label="val top-5" + (" (EMA)" if ema else ""))
    if ema:
        ax2.plot(ep, [100 * (h.raw_top1 or 0) for h in history], "^:", ms=3, label="val top-1 (raw)")
    ax2.plot(ep, [100 * h.train_acc for h in history], "-", color="grey", alpha=0.6, label="train top-1 (augmented)")
    best = max(history, key=lambda h: h.top1)
    ax2.axhline(100 * best.top1, color="k", ls=":", lw=0.8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title(f"best top-1 {100 * best.top1:.2f}% (epoch {best.epoch})")
    ax2.legend(fontsize=8)
    ax3 = ax.twinx()
    ax3.plot(ep, [h.lr for h in history], ":", color="tab:green", lw=1)
    ax3.set_ylabel("LR at epoch end (dotted)", color="tab:green")
    from matplotlib.ticker import MaxNLocator

    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    return plots._save(fig, path)
