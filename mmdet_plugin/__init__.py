"""mmdet 3.x plugin for BN-NAS detection transfer; load it with
``custom_imports = dict(imports=['mmdet_plugin'], allow_failed_imports=False)``.

Registers in ``mmdet.registry.MODELS``: ``BNNASBackbone`` (backbone), ``BiFPN`` (neck), ``EfficientDetHead`` (head)
and ``EfficientDet`` (mmdet's single-stage RetinaNet plus a build-time neck/backbone width check); in
``mmdet.registry.DATASETS``: ``CheckedCocoDataset`` (CocoDataset that validates its annotation file).
"""

from .backbone import BNNASBackbone
from .bifpn import BiFPN
from .datasets import CheckedCocoDataset
from .detector import EfficientDet
from .effdet_head import EfficientDetHead

__all__ = ["BNNASBackbone", "BiFPN", "CheckedCocoDataset", "EfficientDet", "EfficientDetHead"]
