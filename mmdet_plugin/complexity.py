"""Detector size in the papers' convention: convolution multiply-accumulates (FLOPs = MACs) and parameters."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class _Parts(nn.Module):
    """Holds the model's top-level children, so the flop counter names their calls ``_Parts.<child>`` even when
    ``run`` bypasses the model's own forward (e.g. ``extract_feat``)."""

    def __init__(self, model: nn.Module, run: Callable[[nn.Module, torch.Tensor], object]):
        super().__init__()
        for name, child in model.named_children():
            self.add_module(name, child)
        self._model, self._run = [model], run  # in a list: not registered as a submodule

    def forward(self, x: torch.Tensor) -> object:
        return self._run(self._model[0], x)


def conv_macs(model: nn.Module, x: torch.Tensor, run: Callable[[nn.Module, torch.Tensor], object]) -> dict[str, int]:
    """Run ``run(model, x)`` once under ``FlopCounterMode`` and report the convolution MACs per image (flop_counter's
    FLOPs / 2 / batch), grouped by the top-level child (``backbone``, ``neck``, ``bbox_head``). Only convolutions
    count: BN, activations, pooling and element-wise ops do not, as in the NAS papers."""
    parts = _Parts(model, run)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        parts(x)
    flops = counter.get_flop_counts()
    counts: dict[str, int] = {}
    for name, _ in model.named_children():
        conv = sum(v for op, v in flops.get(f"_Parts.{name}", {}).items() if "convolution" in str(op))
        if conv:
            counts[name] = conv // (2 * x.shape[0])
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
