"""Supernet training: BN-only (the paper) or all parameters (the baseline), SPOS or FairNAS paths, resumable.

``bn`` mode freezes every non-BN parameter at its random init with ``requires_grad=False``, so autograd never
computes a weight gradient for it (only activation gradients flow), which is where BN-NAS's per-epoch saving comes
from. ``bn_params='last'`` (default, as in the official code) trains only the BN the indicator reads -- the last BN
of every candidate op -- and keeps every other BN at gamma=1, beta=0; ``'all'`` trains every BN (the paper's text).
``bn-transitions`` is ``bn`` plus every weight of the candidates of searchable layers that change width or stride:
those layers have no skip, so with frozen random weights each path hands later layers a differently scrambled input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
from bnnas.training.config import TrainConfig
from bnnas.training.distributed import DistInfo
from bnnas.training.engine import autocast
from bnnas.training.trainer import EpochRecord, Trainer, check_state_format

CKPT_NAME = "supernet.pth"


@dataclass
class SupernetTrainConfig(TrainConfig):
    epochs: int = 10
    # lr None = 0.8 x global batch / 1024 (paper), at least 0.05
    label_smoothing: float = 0.1
    grad_clip_value: float = 5.0  # gradient *values* clipped, as in the official code
    sampler: str = "spos"  # spos | fairnas
    train_mode: str = "bn"  # bn | bn-transitions | all
    bn_params: str = "last"  # last | all (which BNs train in bn mode)
    # initial gamma of the indicator BN of every candidate that feeds a skip connection (1.0 = the paper); 0 starts
    # every residual branch closed, so all paths begin as one shared network and each op's gamma grows by its use
    gamma_init: float = 1.0
    workers: int = 2

    LR_PER_1024: ClassVar[float] = 0.8
    LR_FLOOR: ClassVar[float] = 0.05
    RESUME_KEYS: ClassVar[tuple[str, ...]] = (
        "batch_size", "lr", "warmup_epochs", "sampler", "train_mode", "bn_params", "gamma_init", "seed",
        "label_smoothing", "momentum", "weight_decay", "grad_clip_value", "epochs")


TRAIN_MODES = ("bn", "bn-transitions", "all")


def configure_trainable(model: Supernet, train_mode: str, bn_params: str = "last") -> list[nn.Parameter]:
    """Set ``requires_grad`` per the training mode and return the parameters that train."""
    if train_mode not in TRAIN_MODES:
        raise BNNASError(f"unknown train mode {train_mode!r}: use one of {', '.join(TRAIN_MODES)}")
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
    if train_mode == "bn-transitions":
        for layer, spec in zip(model.layers, model.space.layers):
            if spec.searchable and (spec.stride != 1 or spec.cin != spec.cout):
                layer.requires_grad_(True)
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

    cfg: SupernetTrainConfig

    def __init__(self, supernet: Supernet, data: ClassificationData, cfg: SupernetTrainConfig, work_dir: Path,
                 device: torch.device, dist: DistInfo = DistInfo(), show_progress: bool = True):
        configure_trainable(supernet, cfg.train_mode, cfg.bn_params)
        if cfg.gamma_init != 1.0:
            init_branch_gammas(supernet, cfg.gamma_init)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every op sees fixed shapes: let cuDNN pick its fastest kernels
        super().__init__(supernet, data, cfg, device, dist, work_dir, show_progress)
        self.path_sampler = build_sampler(cfg.sampler, supernet.space, cfg.seed)

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's sampled paths on one batch: the loss and correct predictions are means over the paths."""
        paths = [p.tolist() for p in self.path_sampler.paths(self.global_step)]
        with autocast(self.device, self.cfg.amp):
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
        correct = (logits.detach().argmax(-1) == y).sum()
        return loss.detach() / len(paths), correct / len(paths)

    def _epoch_extras(self) -> dict[str, Any]:
        return {"scores": to_jsonable(bn_score_table(self.model).scores, nan_to_none=True)}

    def _after_epoch(self, rec: EpochRecord) -> None:
        self.log_epoch(rec)
        if self.dist.is_main:
            self.write_score_history()

    def _extra_state(self) -> dict[str, Any]:
        from bnnas.core.space_file import space_record

        record = space_record(self.model.space)  # a file space travels with its checkpoint
        return {"space": self.model.space.name, "num_classes": self.model.space.num_classes,
                **({"space_file": record} if record else {})}

    def _check_identity(self, ckpt: dict[str, Any], path: Path) -> None:
        if ckpt["space"] != self.model.space.name or ckpt["num_classes"] != self.model.space.num_classes:
            raise BNNASError(f"{path} is a supernet of space {ckpt['space']!r} ({ckpt['num_classes']} classes), "
                             f"not {self.model.space.name!r} ({self.model.space.num_classes} classes)")

    def _load_extra(self, ckpt: dict[str, Any], path: Path) -> None:
        if self.dist.is_main and path == self.ckpt_path:  # a kill may have left op_scores.json off by one epoch
            self.write_score_history()

    def write_score_history(self) -> Path:
        """Per-epoch op scores as JSON (one record per epoch), rewritten atomically each epoch."""
        space = self.model.space
        doc = {"space": space.name, "choices": [list(l.choices) for l in space.layers],
               "epochs": [h.to_dict() for h in self.history]}
        return atomic_write_text(self.work_dir / "op_scores.json", json.dumps(doc) + "\n")


def load_supernet(path: str | Path) -> tuple[Supernet, dict]:
    """Rebuild a trained supernet from its checkpoint (for ``--supernet ckpt`` reuse)."""
    from bnnas.core.space import get_space

    ckpt = load_checkpoint(path, kind="supernet")
    check_state_format(ckpt, Path(path))
    if "space_file" in ckpt:
        from bnnas.core.space_file import space_from_record

        space_from_record(ckpt["space_file"], str(path))
    model = Supernet(get_space(ckpt["space"], ckpt["num_classes"]))
    load_state_strict(model, ckpt["state_dict"], str(path))
    return model, ckpt
