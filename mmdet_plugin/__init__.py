"""mmdet 3.x plugin for BN-NAS detection transfer; load it with
``custom_imports = dict(imports=['mmdet_plugin'], allow_failed_imports=False)``.

Registers: ``BNNASBackbone`` (backbone), ``BiFPN`` (neck), ``EfficientDetHead`` (head) in ``mmdet.registry.MODELS``
and ``CheckedCocoDataset`` in ``mmdet.registry.DATASETS``. The detector is mmdet's own single-stage ``RetinaNet``.
"""

from .backbone import BNNASBackbone
from .bifpn import BiFPN
from .datasets import CheckedCocoDataset
from .effdet_head import EfficientDetHead

__all__ = ["BNNASBackbone", "BiFPN", "CheckedCocoDataset", "EfficientDetHead"]
