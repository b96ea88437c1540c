"""Standalone subnet built from an :class:`~bnnas.core.arch.Arch` -- what is retrained and transferred to detection."""

from __future__ import annotations

import torch
from torch import nn

from bnnas.core.arch import Arch
from bnnas.core.ops import Head, build_op, build_stem, init_weights


class SubNet(nn.Module):
    """The chosen path as a plain network; ``se`` adds squeeze-excitation to every MBConv (the papers' "+SE" models).

    :meth:`feature_info` names the layers whose outputs a detection backbone consumes (the last of each stride).
    """

    def __init__(self, arch: Arch, se: bool = False, dropout: float = 0.2, num_classes: int | None = None):
        super().__init__()
        space = arch.space
        self.arch = arch
        self.se = se
        self.stem = build_stem(space)
        self.layers = nn.ModuleList(
            build_op(op, l.cin, l.cout, l.stride, space.bn_after_every_op, se=se, act=space.activation)
            for op, l in zip(arch.ops, space.layers)
        )
        self.head = Head(space.layers[-1].cout, space.head_channels, num_classes or space.num_classes, dropout,
                         space.activation)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def feature_info(self) -> list[dict]:
        """Layer, channels and stride of each feature level (timm's feature_info convention)."""
        space = self.arch.space
        stride = space.stem_stride
        info = []
        for i, l in enumerate(space.layers):
            stride *= l.stride
            if i in space.feature_layers:
                info.append({"layer": i, "num_chs": l.cout, "reduction": stride})
        return info


def subnet_state_from_supernet(supernet_state: dict[str, torch.Tensor], arch: Arch) -> dict[str, torch.Tensor]:
    """Inherit a path's weights from a supernet state dict (keys ``layers.i.candidates.c.*`` -> ``layers.i.*``)."""
    out = {}
    for k, v in supernet_state.items():
        if k.startswith("layers."):
            _, li, _, ci, rest = k.split(".", 4)
            if int(ci) == arch.choices[int(li)]:
                out[f"layers.{li}.{rest}"] = v
        else:
            out[k] = v
    return out
