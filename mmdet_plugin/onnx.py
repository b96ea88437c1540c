"""A BN-NAS detector up to its raw head outputs, for ONNX export (``bnnas export-onnx --detector``).

mmdeploy splits a single-stage detector the same way: the network (backbone, neck, head convolutions) goes to the
runtime, anchor decoding and NMS stay in the host language.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from bnnas.errors import BNNASError


class RawHeadOutputs(nn.Module):
    """``detector``'s backbone, neck and head: each level's class scores, then each level's box regressions."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cls_scores, bbox_preds = self.detector.bbox_head(self.detector.extract_feat(x))
        return (*cls_scores, *bbox_preds)


def build_raw_detector(config: str, arch: str, checkpoint: str | None, input_size: int | None,
                       seed: int = 0) -> tuple[RawHeadOutputs, int]:
    """The detector of ``config`` with backbone ``arch`` (weights from a detector ``checkpoint``, else seeded random
    ones), wrapped in :class:`RawHeadOutputs`, and its input side (``input_size`` or the config's ``image_size``)."""
    from mmengine.config import Config

    import mmdet_plugin  # noqa: F401  (registers the BN-NAS modules)
    from bnnas.outputs.checkpoint import load_checkpoint, load_state_strict
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.backbone.arch = arch
    cfg.model.backbone.init_cfg = None  # weights come from the detector checkpoint (or stay random)
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint)
        if "state_dict" not in ckpt:
            raise BNNASError(f"{checkpoint} has no 'state_dict'; expected a detector checkpoint (mim train)")
        load_state_strict(model, ckpt["state_dict"], str(checkpoint))
    else:  # the config's own initialisation (head priors, neck init), random backbone
        quiet = logging.getLogger("mmengine")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
        try:
            model.init_weights()
        finally:
            quiet.setLevel(level)
    size = input_size or cfg.get("image_size")
    if not size:
        raise BNNASError(f"{config} sets no image_size; pass --input-size")
    return RawHeadOutputs(model.eval()), int(size)
