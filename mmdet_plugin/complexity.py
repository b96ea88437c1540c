"""Detector size in the papers' convention: convolution multiply-accumulates (FLOPs = MACs) and parameters."""

from __future__ import annotations

import torch
from torch import nn


def conv_macs(model: nn.Module, x: torch.Tensor, run) -> dict[str, int]:
    """Run ``run(model, x)`` once and sum ``C_in * H_out * W_out * C_out * k^2 / groups`` over every Conv2d call,
    grouped by the top-level child (``backbone``, ``neck``, ``bbox_head``). BN, activations, pooling and
    element-wise ops are not counted (SPEC section 2's convention)."""
    counts: dict[str, int] = {}
    hooks = []
    for top, child in model.named_children():
        for m in child.modules():
            if isinstance(m, nn.Conv2d):
                def hook(mod, inp, out, top=top):
                    k = mod.kernel_size[0] * mod.kernel_size[1]
                    macs = out.shape[0] * out.shape[2] * out.shape[3] * mod.out_channels * mod.in_channels * k
                    counts[top] = counts.get(top, 0) + macs // (mod.groups * out.shape[0])
                hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run(model, x)
    finally:
        for h in hooks:
            h.remove()
    counts["total"] = sum(counts.values())
    return counts


def detector_macs(model: nn.Module, size: int = 512) -> dict[str, int]:
    """Conv MACs of a single-stage mmdet detector on one ``size x size`` image (backbone + neck + head convs)."""
    was_training = model.training
    model.eval()

    def run(m, x):
        m.bbox_head(m.extract_feat(x))

    try:
        return conv_macs(model, torch.zeros(1, 3, size, size), run)
    finally:
        model.train(was_training)


def num_params(model: nn.Module) -> dict[str, int]:
    out = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out
