"""Supernet training: BN-only (the paper) or all parameters (the baseline), SPOS or FairNAS paths, resumable.

``bn`` mode freezes every non-BN parameter at its random init with ``requires_grad=False``, so autograd never
computes a weight gradient for it (only activation gradients flow), which is where BN-NAS's per-epoch saving comes
from. ``bn_params='last'`` (default, as in the official code) trains only the BN the indicator reads -- the last BN
of every candidate op -- and keeps every other BN at gamma=1, beta=0; ``'all'`` trains every BN (the paper's text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from bnnas.core.sampling import build_sampler
from bnnas.core.supernet import Supernet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.indicators.bn import bn_score_table
from bnnas.outputs.checkpoint import atomic_write_text, load_checkpoint, load_state_strict
from bnnas.outputs.jsonable import to_jsonable
from bnnas.training.distributed import DistInfo, all_reduce_mean
from bnnas.training.engine import autocast, build_optimizer, build_scheduler, scaled_lr
from bnnas.training.trainer import EpochRecord, Trainer

CKPT_NAME = "supernet.pth"


@dataclass
class SupernetTrainConfig:
    epochs: int = 10
    batch_size: int = 64  # per process
    lr: float | None = None  # peak LR; None = 0.8 x global batch / 1024 (paper), at least 0.05
    warmup_epochs: float | None = None  # None = min(5, 10% of epochs), from 0.25 x peak (paper: 0.2 -> 0.8)
    momentum: float = 0.9
    weight_decay: float = 4e-5  # conv/FC weights only; matters in 'all' mode
    label_smoothing: float = 0.1
    grad_clip: float = 5.0  # gradient *values* clipped, as in the official code
    sampler: str = "spos"  # spos | fairnas
    train_mode: str = "bn"  # bn | all
    bn_params: str = "last"  # last | all (which BNs train in bn mode)
    # initial gamma of the indicator BN of every candidate that feeds a skip connection (1.0 = the paper); 0 starts
    # every residual branch closed, so all paths begin as one shared network and each op's gamma grows by its use
    gamma_init: float = 1.0
    seed: int = 0
    workers: int = 2
    amp: bool = True  # bf16 autocast on GPU
    ckpt_every: int = 0  # also checkpoint every N steps (0 = only at epoch ends)
    channels_last: bool = True  # on GPU
    world_size: int = 1  # processes training together (the global batch is batch_size x world_size)

    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else scaled_lr(0.8, self.batch_size, self.world_size, floor=0.05)

    def warmup(self) -> float:
        return self.warmup_epochs if self.warmup_epochs is not None else min(5.0, 0.1 * self.epochs)

    # Settings that must match for a resumed run to reproduce the uninterrupted one (the world size is checked too).
    RESUME_KEYS = ("batch_size", "lr", "warmup_epochs", "sampler", "train_mode", "bn_params", "gamma_init", "seed",
                   "label_smoothing", "momentum", "weight_decay", "grad_clip", "epochs")


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early_at: int | None = None
    checkpoint: Path | None = None


def configure_trainable(model: Supernet, train_mode: str, bn_params: str = "last") -> list[nn.Parameter]:
    """Set ``requires_grad`` per the training mode and return the parameters that train."""
    if train_mode not in ("bn", "all"):
        raise BNNASError(f"unknown train mode {train_mode!r}: use 'bn' (BN only, the paper) or 'all'")
    if bn_params not in ("last", "all"):
        raise BNNASError(f"unknown bn_params {bn_params!r}: use 'last' (official code) or 'all'")
    if train_mode == "all":
        for p in model.parameters():
            p.requires_grad_(True)
        return list(model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    if bn_params == "last":
        bns = [bn for _, _, bn in model.indicator_bns() if bn is not None]
    else:
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
    for bn in bns:
        bn.weight.requires_grad_(True)
        bn.bias.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def init_branch_gammas(model: Supernet, gamma: float) -> None:
    """Set gamma of the indicator BN of every candidate of a searchable layer whose output is added to a skip."""
    for li, _ci, bn in model.indicator_bns():
        layer = model.space.layers[li]
        if bn is not None and layer.searchable and layer.stride == 1 and layer.cin == layer.cout:
            bn.weight.fill_(gamma)


def scores_from_record(rec: EpochRecord | dict) -> np.ndarray:
    rows = rec.scores if isinstance(rec, EpochRecord) else rec["scores"]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


class SupernetTrainer(Trainer):
    """Trains the supernet one sampled path group per step; every epoch records the op-score table."""

    kind, label, ckpt_name = "supernet", "supernet", CKPT_NAME
    find_unused_parameters = True  # a step runs a few paths of the supernet

    def __init__(self, supernet: Supernet, data: ClassificationData, cfg: SupernetTrainConfig, work_dir: Path,
                 device: torch.device, dist: DistInfo = DistInfo(), show_progress: bool = True):
        self.params = configure_trainable(supernet, cfg.train_mode, cfg.bn_params)
        if cfg.gamma_init != 1.0:
            init_branch_gammas(supernet, cfg.gamma_init)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every op sees fixed shapes: let cuDNN pick its fastest kernels
        super().__init__(supernet, data, cfg, device, dist, work_dir, show_progress)
        self.optimizer = build_optimizer(supernet, cfg.peak_lr(), cfg.momentum, cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, cfg.epochs * self.steps_per_epoch,
                                         int(cfg.warmup() * self.steps_per_epoch), 0.25 * cfg.peak_lr())
        self.path_sampler = build_sampler(cfg.sampler, supernet.space, cfg.seed)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self._running = torch.zeros(2, device=device)  # sums over the epoch's steps: mean loss, accuracy

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        cfg = self.cfg
        self.scheduler.step_update(self.global_step)
        paths = [p.tolist() for p in self.path_sampler.paths(self.global_step)]
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, cfg.amp):
            if self.dist.enabled or len(paths) == 1:  # DDP: all paths in one forward, one gradient reduction
                logits = self.net(x, paths)
                loss = sum(self.criterion(l.float(), y) for l in logits)
                loss.backward()
            else:  # one device: backward path by path, holding one path's activations at a time
                logits, loss = [], 0.0
                for p in paths:
                    out = self.net(x, p)
                    l = self.criterion(out.float(), y)
                    l.backward()
                    logits.append(out.detach())
                    loss = loss + l.detach()
                logits = torch.stack(logits)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_value_(self.params, cfg.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            correct = (logits.detach().argmax(-1) == y).float().mean(1).sum() / len(paths)
            self._running += torch.stack([loss.detach().float() / len(paths), correct.float()])
        self.global_step += 1
        self.step_in_epoch += 1

    def _train_stats(self, reduce: bool = True) -> tuple[float, float]:
        run = all_reduce_mean(self._running, self.dist) if reduce else self._running
        loss, acc = (run.cpu() / max(1, self.step_in_epoch)).tolist()
        return loss, acc

    def _epoch_extras(self) -> dict[str, Any]:
        return {"scores": to_jsonable(bn_score_table(self.model).scores, nan_to_none=True)}

    def _after_epoch(self, rec: EpochRecord) -> None:
        self.log_epoch(rec)
        if self.dist.is_main:
            self.write_score_history()

    def _extra_state(self) -> dict[str, Any]:
        return {"space": self.model.space.name, "num_classes": self.model.space.num_classes}

    def _check_identity(self, ckpt: dict[str, Any], path: Path) -> None:
        if ckpt["space"] != self.model.space.name or ckpt["num_classes"] != self.model.space.num_classes:
            raise BNNASError(f"{path} is a supernet of space {ckpt['space']!r} ({ckpt['num_classes']} classes), "
                             f"not {self.model.space.name!r} ({self.model.space.num_classes} classes)")

    def _load_extra(self, ckpt: dict[str, Any], path: Path) -> None:
        if self.dist.is_main and path == self.ckpt_path:  # a kill may have left op_scores.json off by one epoch
            self.write_score_history()

    def fit(self, resume: bool = True, on_epoch_end: Callable[[SupernetTrainer], bool] | None = None) -> TrainResult:
        """Train until ``cfg.epochs`` (or until ``on_epoch_end`` returns True), resuming from the work dir's
        checkpoint."""
        if resume and self.ckpt_path.exists():
            self.load(self.ckpt_path)
        result = TrainResult(history=self.history, checkpoint=self.ckpt_path)
        if self.train_epochs(on_epoch_end=on_epoch_end):
            result.stopped_early_at = self.epoch
        return result

    def write_score_history(self) -> Path:
        """Per-epoch op scores as JSON (one record per epoch), rewritten atomically each epoch."""
        space = self.model.space
        doc = {"space": space.name, "choices": [list(l.choices) for l in space.layers],
               "epochs": [h.to_dict() for h in self.history]}
        return atomic_write_text(self.work_dir / "op_scores.json", json.dumps(doc) + "\n")


def load_supernet(path: str | Path) -> tuple[Supernet, dict]:
    """Rebuild a trained supernet from its checkpoint (for ``--supernet ckpt`` reuse); its history comes in the
    current record format whatever version wrote it."""
    from bnnas.core.space import get_space

    ckpt = load_checkpoint(path, kind="supernet")
    ckpt["history"] = [EpochRecord.from_dict(h).to_dict() for h in ckpt.get("history", [])]
    model = Supernet(get_space(ckpt["space"], ckpt["num_classes"]))
    load_state_strict(model, ckpt["state_dict"], str(path))
    return model, ckpt
