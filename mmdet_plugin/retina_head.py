"""mmdet's RetinaHead with hard NMS through torchvision (``mmdet_plugin.nms``), for configs/bnnas_retinanet_fpn.py."""

from __future__ import annotations

from mmdet.models.dense_heads import RetinaHead
from mmdet.registry import MODELS

from .nms import TorchvisionNMSMixin


@MODELS.register_module()
class TorchNMSRetinaHead(TorchvisionNMSMixin, RetinaHead):
    """``RetinaHead`` (same arguments) whose hard NMS never reaches mmcv's compiled kernel."""
