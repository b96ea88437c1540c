"""Train a subnet from scratch on a short "proxy" schedule and measure its held-out accuracy.

This is the ground truth of the ranking study (:mod:`bnnas.trust.studies.correlation.correlation`): every sampled
subnet gets exactly the same recipe (same seed, same data order, same augmentation draws), so differences in its
accuracy come from the architecture -- plus the training noise that a short schedule cannot remove, which ``repeats``
(several seeds, averaged) reduces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from bnnas.core.arch import Arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.subnet import SubNet
from bnnas.data import ClassificationData
from bnnas.training.config import TrainConfig
from bnnas.training.trainer import EvalOptions, Trainer, evaluate


@dataclass
class ProxyConfig(TrainConfig):
    """The from-scratch proxy schedule (cosine LR with a short linear warm-up, per iteration)."""

    epochs: int = 3
    lr: float | None = 0.1
    warmup_epochs: float | None = 0.3
    grad_clip_norm: float = 5.0
    dropout: float = 0.0
    repeats: int = 1  # train each subnet with this many seeds and average (reduces training noise)
    amp: bool = False
    channels_last: bool = False

    WARMUP_START: ClassVar[float] = 0.1


class ProxyTrainer(Trainer):
    """The proxy schedule: no checkpoints, no per-epoch evaluation or logging."""

    label = "proxy"
    cfg: ProxyConfig

    def __init__(self, arch: Arch, data: ClassificationData, cfg: ProxyConfig, device: torch.device):
        torch.manual_seed(cfg.seed)
        super().__init__(SubNet(arch, dropout=cfg.dropout), data, cfg, device, show_progress=False)


def _train_once(arch: Arch, data: ClassificationData, cfg: ProxyConfig, device: torch.device) -> dict:
    trainer = ProxyTrainer(arch, data, cfg, device)
    trainer.train_epochs()
    ev = evaluate(trainer.model, data.val, device, EvalOptions(channels_last=trainer.channels_last))
    return {"acc": ev["top1"], "val_loss": ev["loss"],
            "train_loss": trainer.history[-1].train_loss if trainer.history else float("nan")}


def train_from_scratch(arch: Arch, data: ClassificationData, cfg: ProxyConfig,
                       device: torch.device | str = "cpu") -> dict:
    """Train ``arch`` on ``data.train`` with the proxy schedule (``cfg.repeats`` seeds) and return its accuracy on
    ``data.val`` and its cost (a data set that decodes on the device must have a normal image ``val``)."""
    device = torch.device(device)
    t0 = time.perf_counter()
    runs = [_train_once(arch, data, replace(cfg, seed=cfg.seed + r), device) for r in range(max(1, cfg.repeats))]
    accs = [r["acc"] for r in runs]
    return {
        "ops": arch.ops, "choices": list(arch.choices),
        "flops_m": flops_table(arch.space).of(arch.choices) / 1e6,
        "params_m": params_table(arch.space).of(arch.choices) / 1e6,
        "acc": float(np.mean(accs)), "acc_runs": accs, "acc_std": float(np.std(accs)),
        "val_loss": float(np.mean([r["val_loss"] for r in runs])),
        "train_loss": float(np.mean([r["train_loss"] for r in runs])),
        "seconds": time.perf_counter() - t0,
    }
