"""BiFPN neck (EfficientDet; Tan, Pang & Le, CVPR 2020), written for mmdet 3.x.

Levels P3..P7. P3-P5 come from the backbone; P6 = max-pool 3x3/2 of (1x1 conv + BN of the last backbone level) and
P7 = max-pool of P6. Each BiFPN layer has a top-down path (P7 -> P3) and a bottom-up path (P3 -> P7); every node fuses
its inputs with fast normalised fusion ``w_i = relu(p_i) / (sum_j relu(p_j) + 1e-4)`` (``p`` initialised to 1),
then applies Swish -> depthwise 3x3 -> pointwise 1x1 -> BN. Inputs are resampled to the node's level by nearest x2
upsampling or 3x3/2 max-pooling, and projected by 1x1 conv + BN when their width differs (only in the first layer,
where backbone features enter). BN uses momentum 0.01 / eps 1e-3 (PyTorch convention for TF's 0.99 / 1e-3).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule, build_activation_layer
from mmengine.model import BaseModule
from torch import nn

from mmdet.registry import MODELS

EFFDET_NORM = dict(type="BN", momentum=0.01, eps=1e-3, requires_grad=True)


class FastFusion(nn.Module):
    """Fast normalised fusion of ``n`` same-shape inputs with learnable non-negative weights."""

    def __init__(self, n: int, eps: float = 1e-4):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def normalized_weights(self) -> torch.Tensor:
        w = F.relu(self.weight)
        return w / (w.sum() + self.eps)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        w = self.normalized_weights()
        return sum(w[i] * x for i, x in enumerate(inputs))


class Resample(nn.Module):
    """Bring a feature to a node's width (1x1 conv + BN when needed) and spatial size (nearest up / max-pool down)."""

    def __init__(self, cin: int, cout: int, level_delta: int, norm_cfg: dict):
        super().__init__()
        self.proj = (ConvModule(cin, cout, 1, norm_cfg=norm_cfg, act_cfg=None) if cin != cout else nn.Identity())
        self.level_delta = level_delta  # target level - source level: >0 downsample, <0 upsample

    def forward(self, x: torch.Tensor, size: torch.Size) -> torch.Tensor:
        x = self.proj(x)
        for _ in range(max(self.level_delta, 0)):
            x = F.max_pool2d(x, 3, 2, 1)
        if self.level_delta < 0 or x.shape[-2:] != size:
            # nearest x2 per level; interpolating to the node's size also covers odd sizes (ceil vs floor)
            x = F.interpolate(x, size=size, mode="nearest")
        return x


class BiFPNNode(nn.Module):
    def __init__(self, level: int, sources: list[tuple[int, int]], channels: int, norm_cfg: dict, act_cfg: dict):
        """``sources``: (level, width) of each input; the node outputs ``channels`` at ``level``."""
        super().__init__()
        self.level = level
        self.resample = nn.ModuleList(Resample(c, channels, level - lv, norm_cfg) for lv, c in sources)
        self.fusion = FastFusion(len(sources))
        self.act = build_activation_layer(act_cfg)
        self.conv = DepthwiseSeparableConvModule(
            channels, channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=None, dw_norm_cfg=None, dw_act_cfg=None,
            bias=False)

    def forward(self, inputs: Sequence[torch.Tensor], size: torch.Size) -> torch.Tensor:
        x = self.fusion([r(t, size) for r, t in zip(self.resample, inputs)])
        return self.conv(self.act(x))


class BiFPNLayer(nn.Module):
    """One bidirectional layer over ``len(in_channels)`` levels (index 0 = finest)."""

    def __init__(self, in_channels: Sequence[int], channels: int, norm_cfg: dict, act_cfg: dict):
        super().__init__()
        n = len(in_channels)
        self.num_levels = n
        # top-down: node t_i at level i fuses input i and the previous top-down node (level i + 1);
        # the top-down node of level 0 is already that level's output.
        self.top_down = nn.ModuleList()
        for i in range(n - 2, -1, -1):
            above = in_channels[n - 1] if i == n - 2 else channels
            self.top_down.append(BiFPNNode(i, [(i, in_channels[i]), (i + 1, above)], channels, norm_cfg, act_cfg))
        # bottom-up: node o_i fuses input i, the top-down node i (inner levels only) and output i - 1
        self.bottom_up = nn.ModuleList()
        for i in range(1, n):
            sources = [(i, in_channels[i])] + ([(i, channels)] if i < n - 1 else []) + [(i - 1, channels)]
            self.bottom_up.append(BiFPNNode(i, sources, channels, norm_cfg, act_cfg))

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        n = self.num_levels
        sizes = [f.shape[-2:] for f in feats]
        td: dict[int, torch.Tensor] = {n - 1: feats[n - 1]}
        for node in self.top_down:
            i = node.level
            td[i] = node([feats[i], td[i + 1]], sizes[i])
        outs = [td[0]]
        for node in self.bottom_up:
            i = node.level
            inputs = [feats[i]] + ([td[i]] if i < n - 1 else []) + [outs[-1]]
            outs.append(node(inputs, sizes[i]))
        return outs


@MODELS.register_module()
class BiFPN(BaseModule):
    """EfficientDet's BiFPN.

    Args:
        in_channels: widths of the backbone levels used (e.g. ``[56, 128, 432]`` for strides 8/16/32).
        num_channels: BiFPN width (D0: 64).
        num_repeats: number of BiFPN layers (D0: 3).
        num_outs: output levels; levels beyond the backbone's are made by the P6/P7 rule (D0: 5 = P3..P7).
        norm_cfg: BN config; ``dict(type='SyncBN', ...)`` for multi-GPU training.
        act_cfg: activation before each node's separable conv (Swish).
    """

    def __init__(self, in_channels: Sequence[int], num_channels: int = 64, num_repeats: int = 3, num_outs: int = 5,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None, init_cfg: dict | list | None = None):
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if not in_channels or num_outs < len(in_channels):
            raise ValueError(f"BiFPN needs 1..num_outs input levels, got {len(in_channels)} for num_outs={num_outs}")
        if num_repeats < 1:
            raise ValueError("BiFPN num_repeats must be >= 1")
        norm_cfg = dict(EFFDET_NORM) if norm_cfg is None else norm_cfg
        act_cfg = dict(type="Swish") if act_cfg is None else act_cfg
        self.in_channels = in_channels
        self.num_channels = num_channels
        self.num_outs = num_outs
        # extra levels: the first one projects the last backbone level (if widths differ) and pools; later ones pool
        self.extra = nn.ModuleList()
        for j in range(num_outs - len(in_channels)):
            cin = in_channels[-1] if j == 0 else num_channels
            proj = ConvModule(cin, num_channels, 1, norm_cfg=norm_cfg, act_cfg=None) if cin != num_channels \
                else nn.Identity()
            self.extra.append(nn.Sequential(proj, nn.MaxPool2d(3, 2, 1)))
        level_channels = in_channels + [num_channels] * (num_outs - len(in_channels))
        self.layers = nn.ModuleList()
        for r in range(num_repeats):
            self.layers.append(BiFPNLayer(level_channels if r == 0 else [num_channels] * num_outs, num_channels,
                                          norm_cfg, act_cfg))

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"BiFPN was built for {len(self.in_channels)} input levels, got {len(inputs)}")
        feats = list(inputs)
        for extra in self.extra:
            feats.append(extra(feats[-1]))
        for layer in self.layers:
            feats = layer(feats)
        return tuple(feats)
