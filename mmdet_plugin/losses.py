"""mmdet's sigmoid focal loss computed in plain PyTorch on every device.

mmdet's ``FocalLoss`` calls mmcv's compiled ``sigmoid_focal_loss`` kernel whenever the prediction is on CUDA, and an
mmcv built without CUDA kernels (what ``scripts/setup_env.sh`` builds) fails there. Given one-hot targets, mmdet's
own dispatch takes its pure-torch ``py_sigmoid_focal_loss`` on any device, so ``TorchFocalLoss`` only turns class
indices into one-hot targets first: weights, ``avg_factor``, reductions and ``loss_weight`` stay mmdet's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmdet.models.losses import FocalLoss
from mmdet.registry import MODELS


@MODELS.register_module()
class TorchFocalLoss(FocalLoss):
    """``FocalLoss`` (same arguments) that never reaches mmcv's compiled kernel; use it as
    ``loss_cls=dict(type='TorchFocalLoss', use_sigmoid=True, gamma=..., alpha=..., loss_weight=...)``."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None) -> torch.Tensor:
        if self.use_sigmoid and not self.activated and pred.dim() != target.dim():
            num_classes = pred.size(1)  # label num_classes is the background: its one-hot column is dropped
            target = F.one_hot(target, num_classes + 1)[:, :num_classes]
        return super().forward(pred, target, weight, avg_factor=avg_factor, reduction_override=reduction_override)
