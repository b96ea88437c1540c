"""mmdet 3.x plugin for BN-NAS detection transfer; load it with
``custom_imports = dict(imports=['mmdet_plugin'], allow_failed_imports=False)``.

Registers in ``mmdet.registry.MODELS``: ``BNNASBackbone`` (backbone), ``BiFPN`` (neck), ``EfficientDetHead`` (head)
and ``EfficientDet`` (mmdet's single-stage RetinaNet plus a build-time neck/backbone width check), ``TorchFocalLoss``
(mmdet's FocalLoss in plain PyTorch on every device) and ``TorchNMSRetinaHead`` (RetinaHead with torchvision's hard
NMS); in ``mmdet.registry.DATASETS``: ``CheckedCocoDataset`` (CocoDataset that validates its annotation file).

Importing it also allows the non-tensor objects of mmengine Runner checkpoints in torch's weights-only loader, so
``mim test``, ``--resume`` and ``load_from`` read them (``checkpoint_globals``). In a process that ``tools/det.py``
started (``BNNAS_ERROR_FILE`` set), it also hands an uncaught ``BNNASError``'s message to that tool, which prints it
as one ``error: ...`` line (``errors``); elsewhere it leaves ``sys.excepthook`` alone.
"""

from . import checkpoint_globals, errors
from .backbone import BNNASBackbone
from .bifpn import BiFPN
from .datasets import CheckedCocoDataset
from .detector import EfficientDet
from .effdet_head import EfficientDetHead
from .losses import TorchFocalLoss
from .retina_head import TorchNMSRetinaHead

checkpoint_globals.register()
errors.install_excepthook_for_det_tool()

__all__ = ["BNNASBackbone", "BiFPN", "CheckedCocoDataset", "EfficientDet", "EfficientDetHead", "TorchFocalLoss",
           "TorchNMSRetinaHead"]
