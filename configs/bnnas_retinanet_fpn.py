# mmdet's stock RetinaNet-R50-FPN 1x COCO config with the BN-NAS backbone in place of ResNet-50. Besides the backbone
# and the FPN's input widths, only the head's types differ from mmdet's file (inherited via `mmdet::`): the same focal
# loss and hard NMS, computed by PyTorch and torchvision instead of mmcv's compiled kernels.
#
#   mim train mmdet configs/bnnas_retinanet_fpn.py
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmdet_plugin'], allow_failed_imports=False)

backbone_arch = 'bnnas-spos'  # arch.json path or preset
backbone_checkpoint = None    # exported backbone (tools/export_backbone.py); None = random init

model = dict(
    backbone=dict(
        _delete_=True,
        type='BNNASBackbone',
        arch=backbone_arch,
        out_indices=(0, 1, 2, 3),  # strides 4/8/16/32, like ResNet's four stages (FPN uses 1..3: start_level=1)
        frozen_stages=-1,          # ResNet's config freezes stage 1 of an ImageNet-pretrained net; ours may be random
        norm_eval=backbone_checkpoint is not None,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint) if backbone_checkpoint else None),
    neck=dict(in_channels=[32, 56, 128, 432]),  # SPOS space widths at strides 4/8/16/32
    bbox_head=dict(type='TorchNMSRetinaHead', loss_cls=dict(type='TorchFocalLoss')))
