"""EfficientDet's class/box head on mmdet's anchor-head machinery.

Only the towers are ours: ``stacked_convs`` separable convs per tower whose weights are shared by all levels, each
followed by a BN of its own per level and Swish, then a separable prediction conv. Anchors, target assignment,
box coding, losses and post-processing are mmdet's (``AnchorHead``), configured in the model config. Two changes:
the losses' normaliser (the number of positive anchors) is averaged over all GPUs with mmdet's ``reduce_mean``, so
every process divides by the same count (EfficientDet and mmdet's EfficientDet project do this); hard NMS runs
through torchvision (``mmdet_plugin.nms``), so no compiled mmcv kernel is needed on any device.
"""

from __future__ import annotations

from typing import Sequence

import torch
from mmcv.cnn import DepthwiseSeparableConvModule, build_activation_layer, build_norm_layer
from mmengine.model import bias_init_with_prob, normal_init
from torch import nn

from mmdet.models.dense_heads.anchor_head import AnchorHead
from mmdet.registry import MODELS
from mmdet.utils import reduce_mean

from .bifpn import EFFDET_NORM
from .nms import TorchvisionNMSMixin

EFFDET_ANCHORS = dict(
    type="AnchorGenerator", octave_base_scale=4, scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32, 64, 128], center_offset=0.5)


@MODELS.register_module()
class EfficientDetHead(TorchvisionNMSMixin, AnchorHead):
    """EfficientDet head.

    Args:
        num_classes: object classes (no background).
        in_channels: neck width (D0: 64).
        feat_channels: tower width (EfficientDet uses the neck width).
        stacked_convs: separable convs per tower (D0: 3).
        num_levels: pyramid levels the head sees (P3..P7 = 5); each gets its own BNs.
        norm_cfg, act_cfg: per-level BN (momentum 0.01, eps 1e-3) and Swish.
        prior_prob: initial foreground probability of every class logit (0.01).
        Everything else (anchor_generator, bbox_coder, loss_cls, loss_bbox, train_cfg, test_cfg) goes to AnchorHead.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 64, stacked_convs: int = 3,
                 num_levels: int = 5, norm_cfg: dict | None = None, act_cfg: dict | None = None,
                 prior_prob: float = 0.01, anchor_generator: dict | None = None, init_cfg=None, **kwargs):
        self.stacked_convs = stacked_convs
        self.num_levels = num_levels
        self.norm_cfg = dict(EFFDET_NORM) if norm_cfg is None else norm_cfg
        self.act_cfg = dict(type="Swish") if act_cfg is None else act_cfg
        self.prior_prob = prior_prob
        anchor_generator = dict(EFFDET_ANCHORS) if anchor_generator is None else anchor_generator
        if len(anchor_generator.get("strides", [])) != num_levels:
            raise ValueError(f"anchor_generator has {len(anchor_generator.get('strides', []))} strides but the head "
                             f"has num_levels={num_levels}")
        super().__init__(num_classes, in_channels, feat_channels=feat_channels, anchor_generator=anchor_generator,
                         init_cfg=init_cfg, **kwargs)

    def _tower(self) -> tuple[nn.ModuleList, nn.ModuleList]:
        convs = nn.ModuleList(
            DepthwiseSeparableConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                                         padding=1, norm_cfg=None, act_cfg=None, bias=False)
            for i in range(self.stacked_convs))
        bns = nn.ModuleList(
            nn.ModuleList(build_norm_layer(self.norm_cfg, self.feat_channels)[1] for _ in range(self.stacked_convs))
            for _ in range(self.num_levels))
        return convs, bns

    def _init_layers(self) -> None:
        self.cls_convs, self.cls_bns = self._tower()
        self.reg_convs, self.reg_bns = self._tower()
        self.act = build_activation_layer(self.act_cfg)
        width = self.feat_channels if self.stacked_convs else self.in_channels
        self.cls_pred = DepthwiseSeparableConvModule(
            width, self.num_base_priors * self.cls_out_channels, 3, padding=1, norm_cfg=None, act_cfg=None)
        self.reg_pred = DepthwiseSeparableConvModule(
            width, self.num_base_priors * self.bbox_coder.encode_size, 3, padding=1, norm_cfg=None, act_cfg=None)

    def init_weights(self) -> None:
        """Towers keep PyTorch's conv init; each prediction's pointwise conv starts at N(0, 0.01) so that every
        class logit starts near the prior's bias, log(p / (1 - p)) with p = ``prior_prob``, and boxes near 0."""
        super().init_weights()
        for pred in (self.cls_pred, self.reg_pred):
            normal_init(pred.pointwise_conv.conv, std=0.01, bias=0.0)
        nn.init.constant_(self.cls_pred.pointwise_conv.conv.bias, bias_init_with_prob(self.prior_prob))

    def get_targets(self, *args, **kwargs) -> tuple:
        """AnchorHead's targets, with the loss normaliser ``avg_factor`` (#positives) averaged across processes."""
        res = list(super().get_targets(*args, **kwargs))
        labels = res[0][0]
        count = torch.tensor(float(res[4]), dtype=torch.float, device=labels.device)
        res[4] = max(reduce_mean(count).item(), 1.0)  # reduce_mean is the identity when not distributed
        return tuple(res)

    def _run_tower(self, x: torch.Tensor, convs: nn.ModuleList, bns: nn.ModuleList) -> torch.Tensor:
        for conv, bn in zip(convs, bns):
            x = self.act(bn(conv(x)))
        return x

    def forward(self, x: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(x) != self.num_levels:
            raise ValueError(f"EfficientDetHead was built for {self.num_levels} levels, got {len(x)} feature maps")
        cls_scores, bbox_preds = [], []
        for lvl, feat in enumerate(x):
            cls_scores.append(self.cls_pred(self._run_tower(feat, self.cls_convs, self.cls_bns[lvl])))
            bbox_preds.append(self.reg_pred(self._run_tower(feat, self.reg_convs, self.reg_bns[lvl])))
        return cls_scores, bbox_preds
