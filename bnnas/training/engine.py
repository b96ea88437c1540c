"""Training pieces shared by supernet training and retraining: optimizer groups, LR schedule, precision."""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/FC weights only; BN parameters and biases get none (SPEC section 5)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 4e-5,
                    nesterov: bool = True) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if not groups:
        raise ValueError("model has no trainable parameters")
    kw = {"foreach": True} if next(iter(groups[0]["params"])).device.type == "cpu" else {"fused": True}
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, **kw)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int, warmup_lr: float,
                    min_lr: float = 0.0):
    """timm's cosine schedule with linear warm-up, updated per iteration (``step_update(global_step)``)."""
    from timm.scheduler import CosineLRScheduler

    return CosineLRScheduler(optimizer, t_initial=max(1, total_steps - warmup_steps), lr_min=min_lr,
                             warmup_t=warmup_steps, warmup_lr_init=warmup_lr, warmup_prefix=True, t_in_epochs=False)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on GPU (no loss scaling needed); a no-op on CPU where it would only slow us down."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def trainable(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    return [p for p in params if p.requires_grad]
