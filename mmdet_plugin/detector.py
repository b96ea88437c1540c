"""EfficientDet = mmdet's single-stage RetinaNet detector, plus a build-time check that the neck fits the backbone."""

from __future__ import annotations

import copy

import torch

from bnnas.errors import BNNASError
from mmdet.models.detectors import RetinaNet
from mmdet.registry import MODELS


@MODELS.register_module()
class EfficientDet(RetinaNet):
    """RetinaNet's forward/loss/predict unchanged; only construction differs.

    The neck is built after the backbone: ``neck.in_channels=None`` is filled in from the backbone's
    ``out_channels`` (for a ``BNNASBackbone`` they depend on the searched arch's space), and explicit widths that do
    not match them are refused at build time with one readable line instead of a shape error at the first forward.

    ``channels_last=True`` keeps weights and activations in NHWC memory layout: on CPU, PyTorch's depthwise
    convolutions (most of this network) train about 2-3x faster that way; results are the same up to float rounding.
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict, channels_last: bool = False, **kwargs):
        super().__init__(backbone=backbone, neck=None, bbox_head=bbox_head, **kwargs)
        neck = copy.deepcopy(neck)
        have = getattr(self.backbone, "out_channels", None)
        if have is not None and neck.get("in_channels") is None:
            neck["in_channels"] = list(have)
        elif have is not None and list(neck["in_channels"]) != list(have):
            arch = getattr(self.backbone, "arch", None)
            raise BNNASError(
                f"neck in_channels {list(neck['in_channels'])} do not match the backbone outputs {list(have)}"
                + (f" of arch {arch}" if arch is not None else "")
                + "; set neck.in_channels=None to take them from the backbone"
            )
        self.neck = MODELS.build(neck)
        self._modules["bbox_head"] = self._modules.pop("bbox_head")  # mmdet's order: backbone, neck, head
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def extract_feat(self, batch_inputs: torch.Tensor):
        if self.channels_last:
            batch_inputs = batch_inputs.contiguous(memory_format=torch.channels_last)
        return super().extract_feat(batch_inputs)
