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

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bnnas.core.arch import Arch, arch_from_dict
from bnnas.core.flops import subnet_cost
from bnnas.core.subnet import SubNet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_save, atomic_write_text, load_state_strict
from bnnas.outputs.plots import plot_retrain_curve
from bnnas.training.config import TrainConfig
from bnnas.training.distributed import DistInfo
from bnnas.training.trainer import EpochRecord, Trainer, log

LAST_NAME, BEST_NAME = "last.pth", "best.pth"
METRICS_NAME, CURVE_NAME = "metrics.json", "training_curve.png"
SUBNET_FORMAT = "bnnas.subnet/1"

DIGITS_EPOCHS = 15  # built-in digits: ~100% val top-1 by epoch 10; ~2 CPU-minutes for a 10 MFLOPs arch
FULL_EPOCHS = 240  # the paper's retraining length


@dataclass
class RetrainConfig(TrainConfig):
    epochs: int = FULL_EPOCHS
    batch_size: int = 128  # per process; 8 GPUs x 128 = the official global batch of 1024
    # lr None = 0.5 x global batch / 1024 (official retraining LR at batch 1024); schedule: cosine (paper text) or
    # linear (official code)
    label_smoothing: float = 0.1
    grad_clip_norm: float = 5.0  # official retraining code
    dropout: float = 0.2
    se: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    input_size: int = 32

    RESUME_KEYS: ClassVar[tuple[str, ...]] = (
        "epochs", "batch_size", "lr", "warmup_epochs", "schedule", "min_lr", "momentum", "weight_decay",
        "label_smoothing", "dropout", "grad_clip_norm", "se", "ema", "ema_decay", "input_size", "seed", "world_size")

    def warmup_steps(self, steps_per_epoch: int) -> int:
        return int(round(self.warmup() * steps_per_epoch))  # rounded, where the other trainers truncate

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
            (self.grad_clip_norm >= 0, f"--grad-clip-norm must be >= 0 (got {self.grad_clip_norm})"),
            (0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1) (got {self.ema_decay})"),
            (self.input_size >= 8, f"--input-size must be >= 8 (got {self.input_size})"),
            (self.workers >= 0, f"--workers must be >= 0 (got {self.workers})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BNNASError(msg)


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, 0x5EED, step]).generate_state(1)[0])


class Retrainer(Trainer):
    """Trains one subnet with optional EMA; every epoch evaluates on ``data.val`` and keeps the best weights."""

    kind, label, ckpt_name = "subnet", "retrain", LAST_NAME
    cfg: RetrainConfig

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
        self.best: EpochRecord | None = None  # the epoch best.pth holds

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
        improved = self.best is None or rec.top1 > self.best.top1
        if improved:
            self.best = rec
        self.log_epoch(rec, "  *best*" if improved else "")
        # best.pth first: a crash between the two writes then resumes from the previous last.pth and redoes this
        # epoch, which rewrites the same best.pth
        if improved:
            self.save_best(rec)
        if self.dist.is_main:
            self.write_metrics()

    def _best_record(self) -> EpochRecord | None:
        return self.best

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
                "best_epoch": self.best.epoch if self.best else 0}

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
        self.best = next((h for h in self.history if h.epoch == ckpt["best_epoch"]), None)
        log.info("best top-1 so far %.2f%%", 100 * (self.best.top1 if self.best else 0.0))

    # -- reports -----------------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        flops, params = subnet_cost(self.arch, self.cfg.se)
        flops_res, _ = subnet_cost(self.arch, self.cfg.se, self.cfg.input_size)
        n_params = sum(p.numel() for p in self.model.parameters())
        best = self.best or EpochRecord(0, 0.0, 0.0, 0.0, 0.0, top1=0.0, top5=0.0)  # no epoch finished yet
        return {
            "arch": self.arch.ops, "space": self.arch.space.name, "se": self.cfg.se, "ema": self.cfg.ema,
            "data": self.data.name, "num_classes": self.data.num_classes, "input_size": self.cfg.input_size,
            "epochs": self.epoch, "best_top1": best.top1, "best_top5": best.top5, "best_epoch": best.epoch,
            "final_top1": self.history[-1].top1 if self.history else None,
            "params_m": round(params / 1e6, 4), "params_counted_m": round(n_params / 1e6, 4),
            "flops_m": round(flops / 1e6, 3), "flops_m_at_input_size": round(flops_res / 1e6, 3),
            "flops_resolution": self.arch.space.input_size, "seconds": round(self.seconds, 2),
            "peak_lr": self.cfg.peak_lr(), "global_batch": self.cfg.batch_size * self.cfg.world_size,
        }

    def write_metrics(self) -> Path:
        doc = {"config": asdict(self.cfg), "summary": self.summary(), "epochs": [h.to_dict() for h in self.history]}
        path = atomic_write_text(self.work_dir / METRICS_NAME, json.dumps(doc, indent=2) + "\n")
        if self.history:
            plot_retrain_curve(self.history, self.work_dir / CURVE_NAME, self.cfg.ema)
        return path
