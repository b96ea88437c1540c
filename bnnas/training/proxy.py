"""Train a subnet from scratch on a short "proxy" schedule and measure its held-out accuracy.

This is the ground truth of the ranking study (:mod:`bnnas.trust.correlation`): every sampled subnet gets exactly the same
recipe (same seed, same data order, same augmentation draws), so differences in its accuracy come from the
architecture -- plus the training noise that a short schedule cannot remove, which ``repeats`` (several seeds,
averaged) reduces.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bnnas.core.arch import Arch
from bnnas.data import ResumableSampler, SeededDataset
from bnnas.training.engine import build_optimizer, build_scheduler
from bnnas.errors import BNNASError
from bnnas.core.flops import flops_table, params_table
from bnnas.core.subnet import SubNet


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

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, device: torch.device, batch_size: int = 256) -> tuple[float, float]:
    """(top-1 accuracy, mean cross-entropy) of ``model`` on ``data``."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in DataLoader(data, batch_size):
        x, y = x.to(device), y.to(device)
        out = model(x).float()
        loss += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    if n == 0:
        raise BNNASError("evaluation set is empty")
    return correct / n, loss / n


def _train_once(arch: Arch, train: Dataset, val: Dataset, cfg: ProxyConfig, seed: int,
                device: torch.device, collate_fn=None, device_transform=None) -> dict:
    torch.manual_seed(seed)
    model = SubNet(arch, dropout=cfg.dropout).to(device)
    optimizer = build_optimizer(model, cfg.lr, cfg.momentum, cfg.weight_decay)
    dataset = SeededDataset(train, seed)
    sampler = ResumableSampler(len(dataset), seed, shuffle=True)
    steps_per_epoch = len(sampler) // cfg.batch_size
    if steps_per_epoch == 0:
        raise BNNASError(f"proxy batch size {cfg.batch_size} is larger than the {len(sampler)} training images")
    total = cfg.epochs * steps_per_epoch
    scheduler = build_scheduler(optimizer, total, int(cfg.warmup_epochs * steps_per_epoch), 0.1 * cfg.lr)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step, last_loss = 0, float("nan")
    model.train()
    for epoch in range(cfg.epochs):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        run = 0.0
        for x, y in DataLoader(dataset, cfg.batch_size, sampler=sampler, drop_last=True, num_workers=cfg.workers,
                               collate_fn=collate_fn, pin_memory=device.type == "cuda"):
            scheduler.step_update(step)
            # a GPU-decode data set yields encoded images that its device_transform turns into a batch
            x = device_transform(x, device) if device_transform is not None else x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
            optimizer.step()
            run += loss.item()
            step += 1
        last_loss = run / steps_per_epoch
        model.train()
    acc, val_loss = evaluate(model, val, device)
    return {"acc": acc, "val_loss": val_loss, "train_loss": last_loss}


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
