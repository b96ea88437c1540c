"""Single-path one-shot supernet: one choice block per layer, one candidate run per layer per forward."""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn

from bnnas.core.ops import Head, build_op, build_stem, init_weights, last_bn
from bnnas.core.space import SearchSpace


class ChoiceLayer(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, choices: Sequence[str], bn_after_param_free: bool,
                 act: str = "relu6"):
        super().__init__()
        self.choices = tuple(choices)
        self.candidates = nn.ModuleList(build_op(op, cin, cout, stride, bn_after_param_free, act=act) for op in choices)

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:
        return self.candidates[choice](x)


class Supernet(nn.Module):
    """Weight-sharing supernet over a :class:`SearchSpace`; ``forward(x, choices)`` runs one path."""

    def __init__(self, space: SearchSpace, dropout: float = 0.0):
        super().__init__()
        self.space = space
        self.stem = build_stem(space)
        self.layers = nn.ModuleList(
            ChoiceLayer(l.cin, l.cout, l.stride, l.choices, space.bn_after_every_op, space.activation)
            for l in space.layers
        )
        self.head = Head(space.layers[-1].cout, space.head_channels, space.num_classes, dropout, space.activation)
        init_weights(self)

    def forward(self, x: torch.Tensor, choices) -> torch.Tensor:
        """One path (``choices``: L ints) -> logits; several paths (a list of paths) -> stacked logits (P, B, C).

        The multi-path form lets DDP see FairNAS's N paths as one forward/backward, so every rank reduces
        gradients once per step.
        """
        if len(choices) and hasattr(choices[0], "__len__"):
            return torch.stack([self.forward(x, c) for c in choices])
        x = self.stem(x)
        for layer, c in zip(self.layers, choices):
            x = layer(x, int(c))
        return self.head(x)

    def indicator_bns(self) -> Iterator[tuple[int, int, nn.BatchNorm2d | None]]:
        """(layer, choice, BN read by the indicator) for every candidate; BN is None for BN-free candidates."""
        for li, layer in enumerate(self.layers):
            for ci, cand in enumerate(layer.candidates):
                yield li, ci, last_bn(cand)

    def path_modules(self, choices: Sequence[int]) -> list[nn.Module]:
        return [self.stem, *(layer.candidates[int(c)] for layer, c in zip(self.layers, choices)), self.head]
