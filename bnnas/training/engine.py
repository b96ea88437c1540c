"""Training pieces shared by every trainer: the LR rule, optimizer groups, LR schedule, precision."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def scaled_lr(base_lr_per_1024: float, per_process_batch: int, world_size: int = 1, floor: float = 0.0) -> float:
    """The linear scaling rule: ``base_lr_per_1024`` at a global batch of 1024, never below ``floor``."""
    return max(floor, base_lr_per_1024 * per_process_batch * world_size / 1024)


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 4e-5,
                    nesterov: bool = True) -> torch.optim.Optimizer:
    """Nesterov SGD with weight decay on conv/FC weights only (none on BN parameters and biases); frozen
    parameters are left out."""
    from timm.optim import param_groups_weight_decay

    groups = param_groups_weight_decay(model, weight_decay)
    if not groups:
        raise ValueError("model has no trainable parameters")
    kw = {"foreach": True} if groups[0]["params"][0].device.type == "cpu" else {"fused": True}
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, **kw)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, warmup_lr: float,
                    min_lr: float = 0.0, schedule: str = "cosine"):
    """timm's cosine (or, ``schedule='linear'``, straight-line) decay to ``min_lr`` after a linear warm-up, updated
    per iteration (``step_update(global_step)``)."""
    from timm.scheduler import CosineLRScheduler, PolyLRScheduler

    kw = dict(t_initial=max(1, total_steps - warmup_steps), lr_min=min_lr, warmup_t=warmup_steps,
              warmup_lr_init=warmup_lr, warmup_prefix=True, t_in_epochs=False)
    if schedule == "cosine":
        return CosineLRScheduler(optimizer, **kw)
    return PolyLRScheduler(optimizer, power=1.0, **kw)  # power 1: a straight line from the peak to min_lr


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on GPU (no loss scaling needed); a no-op on CPU where it would only slow us down."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
