"""A searched BN-NAS subnet as an mmdet backbone (the classifier head is dropped)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from timm.layers import DropPath
from timm.models._efficientnet_blocks import InvertedResidual

from bnnas.core.arch import load_arch
from bnnas.export import load_backbone_state
from bnnas.outputs.checkpoint import load_state_strict
from bnnas.errors import BNNASError
from bnnas.core.subnet import SubNet
from mmdet.registry import MODELS


SCRATCH = "scratch"
EXPORT_HINT = ("write it with `python tools/export_backbone.py --checkpoint <retrained best.pth> --out <file>.pth` "
               "(or set backbone_checkpoint='scratch' to train from random init)")
NO_CHECKPOINT = ("the BN-NAS backbone needs pretrained weights: set backbone_checkpoint (model.backbone.init_cfg."
                 f"checkpoint) to an exported backbone; {EXPORT_HINT}")


@MODELS.register_module()
class BNNASBackbone(BaseModule):
    """Stem + searched layers of a :class:`bnnas.core.subnet.SubNet`, returning one feature map per chosen stride level.

    Args:
        arch: path to an ``arch.json``, a preset name (``bnnas-spos``, ``spos``, ``abs-fairnas``) or an arch dict.
        se: squeeze-excitation in every MBConv (must match the pretrained weights).
        out_indices: indices into the space's stride levels (the last layer of each stride). For ``spos-imagenet``
            the levels are strides 4/8/16/32 with 32/56/128/432 channels, so ``(1, 2, 3)`` gives C3-C5.
        frozen_stages: -1 trains everything; 0 freezes the stem; ``k >= 1`` freezes the stem and levels ``0..k-1``
            (parameters stop training and their BNs stay in eval mode).
        norm_eval: keep every BN of the backbone in eval mode during training (frozen running statistics).
        sync_bn: SyncBN in the backbone when the process group is up at build time (mmengine's Runner starts it
            before building the model), plain BN otherwise, as the Runner leaves SyncBN layers on one device. The
            backbone converts itself with timm's converter, which keeps the activation that timm's BN+act layers
            fuse in; mmengine's converter and its one-device revert would drop it.
        drop_path_rate: stochastic depth of the residual MBConv blocks (timm's ``DropPath``); block ``i`` of the
            ``n`` that run drops its branch with probability ``drop_path_rate * i / n`` (EfficientDet: 0.1-0.2).
        init_cfg: ``dict(type='Pretrained', checkpoint='bnnas_backbone.pth')`` loads an exported backbone
            (tools/export_backbone.py) or a retrained subnet checkpoint; weights of another arch are refused.
            ``prefix='backbone.'`` (or mmdet's usual ``'backbone'``) reads the backbone out of a detector checkpoint.
            ``checkpoint=None`` is refused with a one-line hint; ``checkpoint='scratch'`` is the explicit opt-in
            to random init (``init_cfg=None`` too, for code that builds the backbone by hand).

    Attributes ``out_channels`` and ``out_strides`` describe the outputs (used to check neck widths).
    """

    def __init__(self, arch: str | dict = "bnnas-spos", se: bool = False, out_indices: Sequence[int] = (1, 2, 3),
                 frozen_stages: int = -1, norm_eval: bool = False, sync_bn: bool = False,
                 drop_path_rate: float = 0.0, init_cfg: dict | list | None = None):
        super().__init__(init_cfg=init_cfg)
        self.arch = load_arch(arch)
        self.se = bool(se)
        net = SubNet(self.arch, se=self.se, dropout=0.0)
        self.stem = net.stem
        self.layers = net.layers
        info = net.feature_info()
        self.level_layers = tuple(i["layer"] for i in info)
        self.level_channels = tuple(i["num_chs"] for i in info)
        self.level_strides = tuple(i["reduction"] for i in info)

        out_indices = tuple(int(i) for i in out_indices)
        n = len(info)
        if not out_indices or any(not 0 <= i < n for i in out_indices) or list(out_indices) != sorted(set(out_indices)):
            raise BNNASError(
                f"out_indices {out_indices} must be increasing indices into the {n} stride levels of space "
                f"{self.arch.space.name!r} (strides {', '.join(map(str, self.level_strides))})"
            )
        if not -1 <= frozen_stages <= n:
            raise BNNASError(f"frozen_stages must be in -1..{n}, got {frozen_stages}")
        self.out_indices = out_indices
        self.out_channels = tuple(self.level_channels[i] for i in out_indices)
        self.out_strides = tuple(self.level_strides[i] for i in out_indices)
        self._out_layers = {self.level_layers[i]: k for k, i in enumerate(out_indices)}
        self._num_run = self.level_layers[out_indices[-1]] + 1  # layers after the last output are never run
        for p in self.layers[self._num_run:].parameters():  # ... and must not look trainable (DDP unused params)
            p.requires_grad = False
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.drop_path_rate = float(drop_path_rate)
        self._set_drop_path(self.drop_path_rate)
        if sync_bn and torch.distributed.is_available() and torch.distributed.is_initialized():
            from timm.layers import convert_sync_batchnorm

            self.stem = convert_sync_batchnorm(self.stem)
            self.layers = convert_sync_batchnorm(self.layers)
        self._freeze_stages()

    def _set_drop_path(self, rate: float) -> None:
        if not 0.0 <= rate < 1.0:
            raise BNNASError(f"drop_path_rate must be in [0, 1), got {rate}")
        if rate == 0.0:
            return
        for i in range(self._num_run):
            block = self.layers[i]
            if isinstance(block, InvertedResidual) and block.has_skip:  # only residual blocks can drop their branch
                block.drop_path = DropPath(rate * i / self._num_run)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs: list[torch.Tensor] = []
        for i in range(self._num_run):
            x = self.layers[i](x)
            if i in self._out_layers:
                outs.append(x)
        return tuple(outs)

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods: list[nn.Module] = [self.stem]
        if self.frozen_stages >= 1:
            last = self.level_layers[self.frozen_stages - 1]
            mods.extend(self.layers[: last + 1])
        return mods

    def _freeze_stages(self) -> None:
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> "BNNASBackbone":
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Load a ``Pretrained`` checkpoint strictly (and check its arch); ``'scratch'`` keeps bnnas's own init."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            ckpt = cfg.get("checkpoint")
            if not ckpt:
                raise BNNASError(NO_CHECKPOINT)
            if ckpt == SCRATCH:
                MMLogger.get_current_instance().warning("BNNASBackbone: training from random init (checkpoint='scratch')")
                self.init_cfg = None
                super().init_weights()
                self.init_cfg = cfg
                return
            self.load_pretrained(ckpt, prefix=cfg.get("prefix"))
            self._is_init = True
            return
        super().init_weights()

    def load_pretrained(self, path: str, prefix: str | None = None) -> None:
        if not Path(path).is_file():
            raise BNNASError(f"backbone checkpoint {path} not found; {EXPORT_HINT}")
        if prefix and not prefix.endswith("."):  # mmdet writes prefix='backbone' for the keys 'backbone.*'
            prefix += "."
        state = load_backbone_state(path, self.arch, self.se, prefix=prefix)
        load_state_strict(self, state, f"{path} (for backbone {self.arch.describe(False)}, se={self.se})")
        MMLogger.get_current_instance().info(f"BNNASBackbone: loaded {len(state)} tensors from {path}")
