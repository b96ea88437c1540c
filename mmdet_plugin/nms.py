"""Hard NMS for mmdet's dense heads through ``torchvision.ops.batched_nms``, whose CPU and CUDA kernels ship with
torchvision, so prediction never reaches mmcv's compiled ``nms`` (absent from an mmcv built for the CPU only).

:class:`TorchvisionNMSMixin` replaces only the NMS step of mmdet's ``BaseDenseHead._bbox_post_process``: rescaling,
score factors and the minimum box size stay mmdet's, and an ``nms`` config of another type (``soft_nms``: mmcv's
CPU op) goes through mmdet unchanged.
"""

from __future__ import annotations

import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torchvision.ops import batched_nms, nms

from bnnas.errors import BNNASError
from mmdet.structures.bbox import get_box_tensor

# split_thr only switches mmcv between two implementations of the same result
HARD_NMS_KEYS = frozenset({"type", "iou_threshold", "class_agnostic", "split_thr"})


def hard_nms_keep(bboxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, nms_cfg: dict) -> torch.Tensor:
    """Indices that mmcv's ``batched_nms(bboxes, scores, labels, nms_cfg)`` keeps for ``type='nms'``, best first:
    per class (or across classes with ``class_agnostic=True``), a box goes when its IoU with a better one exceeds
    ``iou_threshold``."""
    unknown = set(nms_cfg) - HARD_NMS_KEYS
    if unknown:
        raise BNNASError(f"test_cfg.nms options {sorted(unknown)} are not supported by the torchvision NMS; "
                         f"use {sorted(HARD_NMS_KEYS - {'type'})}")
    iou = float(nms_cfg["iou_threshold"])
    if nms_cfg.get("class_agnostic", False):
        return nms(bboxes, scores, iou)
    return batched_nms(bboxes, scores, labels, iou)


class TorchvisionNMSMixin:
    """Put before an mmdet dense head in the bases (``class Head(TorchvisionNMSMixin, AnchorHead)``)."""

    def _bbox_post_process(self, results: InstanceData, cfg: ConfigDict, rescale: bool = False,
                           with_nms: bool = True, img_meta: dict | None = None) -> InstanceData:
        if cfg.nms.get("type", "nms") != "nms":
            return super()._bbox_post_process(results, cfg, rescale, with_nms, img_meta)
        results = super()._bbox_post_process(results, cfg, rescale, False, img_meta)
        if with_nms and results.bboxes.numel() > 0:
            keep = hard_nms_keep(get_box_tensor(results.bboxes), results.scores, results.labels, cfg.nms)
            results = results[keep][: cfg.max_per_img]
        return results
