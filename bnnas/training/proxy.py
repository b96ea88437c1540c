"""Train a subnet from scratch on a short "proxy" schedule and measure its held-out accuracy.

This is the ground truth of the ranking study (:mod:`bnnas.trust.correlation`): every sampled subnet gets exactly the same
recipe (same seed, same data order, same augmentation draws), so differences in its accuracy come from the
architecture -- plus the training noise that a short schedule cannot remove, which ``repeats`` (several seeds,
averaged) reduces.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from bnnas.core.arch import Arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.subnet import SubNet
from bnnas.data import ClassificationData
from bnnas.training.engine import build_optimizer, build_scheduler
from bnnas.training.trainer import Trainer, evaluate


@dataclass
class ProxyConfig:
    """The from-scratch proxy schedule (cosine LR with a short linear warm-up, per iteration)."""

    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.1
    warmup_epochs: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    dropout: float = 0.0
    grad_clip_norm: float = 5.0
    seed: int = 0
    repeats: int = 1  # train each subnet with this many seeds and average (reduces training noise)
    workers: int = 0
    channels_last_cpu: bool = False  # about 1.6x faster depthwise convs on CPU (other float sums)

    def to_dict(self) -> dict:
        return asdict(self)


class ProxyTrainer(Trainer):
    """The proxy schedule: no checkpoints, no per-epoch evaluation or logging."""

    label = "proxy"

    def __init__(self, arch: Arch, data: ClassificationData, cfg: ProxyConfig, device: torch.device):
        torch.manual_seed(cfg.seed)
        super().__init__(SubNet(arch, dropout=cfg.dropout), data, cfg, device, show_progress=False)
        self.optimizer = build_optimizer(self.model, cfg.lr, cfg.momentum, cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, cfg.epochs * self.steps_per_epoch,
                                         int(cfg.warmup_epochs * self.steps_per_epoch), 0.1 * cfg.lr)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.clip_norm = cfg.grad_clip_norm

    def _count(self, loss: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        # the loss as the mean of the steps' losses, as the cached results of earlier versions have it
        self._running += torch.stack([loss.double(), correct.double(),
                                      torch.tensor(float(n), dtype=torch.float64, device=self.device)])

    def _train_stats(self, reduce: bool = True) -> tuple[float, float]:
        loss, correct, n = self._running.tolist()
        return loss / max(1, self.step_in_epoch), correct / max(1.0, n)


def _train_once(arch: Arch, train: Dataset, val: Dataset, cfg: ProxyConfig, seed: int,
                device: torch.device, collate_fn=None, device_transform=None) -> dict:
    data = ClassificationData("proxy", train, val, arch.space.num_classes, arch.space.input_size,
                              collate_fn=collate_fn, device_transform=device_transform)
    trainer = ProxyTrainer(arch, data, replace(cfg, seed=seed), device)
    trainer.train_epochs()
    ev = evaluate(trainer.model, val, device, channels_last=trainer.channels_last)
    return {"acc": ev["top1"], "val_loss": ev["loss"],
            "train_loss": trainer.history[-1].train_loss if trainer.history else float("nan")}


def train_from_scratch(arch: Arch, train: Dataset, val: Dataset, cfg: ProxyConfig,
                       device: torch.device | str = "cpu", collate_fn=None, device_transform=None) -> dict:
    """Train ``arch`` with the proxy schedule (``cfg.repeats`` seeds) and return its held-out accuracy and cost.

    ``collate_fn`` / ``device_transform`` come from a :class:`~bnnas.data.ClassificationData` that decodes on the
    device (``val`` must then be a normal image data set)."""
    device = torch.device(device)
    t0 = time.perf_counter()
    runs = [_train_once(arch, train, val, cfg, cfg.seed + r, device, collate_fn, device_transform)
            for r in range(max(1, cfg.repeats))]
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
