"""Building blocks shared by the supernet and standalone subnets.

The MBConv candidate is timm's ``InvertedResidual`` (1x1 expand, BN, act, kxk depthwise, BN, act, 1x1 project, BN,
residual when shapes allow) with the space's activation (ReLU6 in the paper's spaces, ReLU in NAS-Bench-Macro):
exactly the published op, so we do not write our own.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from timm.layers import BatchNormAct2d
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual, SqueezeExcite

from bnnas.core.space import SearchSpace, parse_op

ACT = nn.ReLU6
_ACTIVATION_LAYERS: dict[str, type[nn.Module]] = {"relu6": nn.ReLU6, "relu": nn.ReLU}


def activation_layer(name: str) -> type[nn.Module]:
    """The module class of a space's ``activation`` name."""
    return _ACTIVATION_LAYERS[name]


class ParamFreeOp(nn.Module):
    """Identity or 3x3 pooling, optionally followed by an affine BN (BNNAS++'s unbiased candidates)."""

    def __init__(self, kind: str, channels: int, with_bn: bool):
        super().__init__()
        if kind == "id":
            self.op: nn.Module = nn.Identity()
        elif kind == "avg":
            self.op = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        elif kind == "max":
            self.op = nn.MaxPool2d(3, 1, 1)
        else:
            raise ValueError(kind)
        self.bn = nn.BatchNorm2d(channels) if with_bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.op(x)
        return self.bn(x) if self.bn is not None else x


class ConvIdentity(nn.Module):
    """1x1 conv + BN without activation: the identity of a layer whose width or stride changes (NAS-Bench-Macro)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def build_op(op: str, cin: int, cout: int, stride: int, bn_after_param_free: bool = False, se: bool = False,
             act: str = "relu6") -> nn.Module:
    kind, k, e = parse_op(op)
    if kind == "mbconv":
        se_layer = partial(SqueezeExcite, rd_ratio=0.25) if se else None
        return InvertedResidual(cin, cout, k, stride, exp_ratio=e, act_layer=activation_layer(act), se_layer=se_layer)
    if kind == "idconv":
        return ConvIdentity(cin, cout, stride)
    if stride != 1 or cin != cout:
        raise ValueError(f"parameter-free op {op!r} needs stride 1 and equal widths, got {cin}->{cout}/{stride}")
    if kind == "id" and not bn_after_param_free:
        return nn.Identity()
    return ParamFreeOp(kind, cout, bn_after_param_free)


def last_bn(module: nn.Module) -> nn.BatchNorm2d | None:
    """The BN whose gamma the indicator reads: the one after the projection conv (or a param-free op's BN)."""
    if isinstance(module, InvertedResidual):
        return module.bn3
    return getattr(module, "bn", None)


def build_stem(space: SearchSpace) -> nn.Sequential:
    """3x3 conv + BN + act, then the fixed depthwise-separable block if the space has one (no residual, no
    activation at its end)."""
    act = activation_layer(space.activation)
    stem = nn.Sequential(
        nn.Conv2d(3, space.stem_channels, 3, space.stem_stride, 1, bias=False),
        BatchNormAct2d(space.stem_channels, act_layer=act),
    )
    if space.first_channels is not None:
        stem.append(DepthwiseSeparableConv(space.stem_channels, space.first_channels, 3, 1, act_layer=act, noskip=True))
    return stem


class Head(nn.Module):
    def __init__(self, cin: int, channels: int, num_classes: int, dropout: float = 0.0, act: str = "relu6"):
        super().__init__()
        self.conv = nn.Conv2d(cin, channels, 1, bias=False)
        self.bn = BatchNormAct2d(channels, act_layer=activation_layer(act))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.bn(self.conv(x))).flatten(1)
        return self.fc(self.dropout(x))


def init_weights(model: nn.Module) -> None:
    """Fan-out normal init: conv ~ N(0, sqrt(2 / (k^2 * C_out))), BN gamma=1 beta=0, FC left at PyTorch's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
