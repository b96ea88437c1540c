# BNNAS-EffDet: a searched BN-NAS backbone in the EfficientDet-D0 setting (512 px, BiFPN 64 ch x 3, head 3 convs), COCO 2017.
#
#   python tools/export_backbone.py --checkpoint runs/retrain/best.pth --out work_dirs/bnnas_backbone.pth
#   mim train mmdet configs/bnnas_effdet.py                                   # 1 GPU (BN)
#   mim train mmdet configs/bnnas_effdet.py --launcher pytorch --gpus 8       # 8 GPUs x 16 = batch 128 (SyncBN)
#   mim test  mmdet configs/bnnas_effdet.py --checkpoint work_dirs/bnnas_effdet/epoch_300.pth
#   mim test  mmdet configs/bnnas_effdet_softnms.py --checkpoint ...          # the TF reference's soft-NMS
#
# Dataset, schedule and runtime are mmdet's own `_base_` files (inherited from the installed mmdet); this file only
# states where the D0 setting differs. Data: mmdet's COCO layout under data/coco/.
#
# The backbone starts from an exported BN-NAS backbone (EfficientDet and the paper start from ImageNet weights).
# Without one, training stops with a one-line hint; backbone_checkpoint = 'scratch' opts in to random init. From the
# command line: --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/bnnas_backbone.pth
_base_ = [
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]

backbone_arch = 'bnnas-spos'   # arch.json path, preset name (bnnas-spos, spos, abs-fairnas) or an inline dict
backbone_checkpoint = None     # exported backbone (tools/export_backbone.py), or 'scratch' for random init
backbone_se = False            # must match the exported weights
drop_path_rate = 0.2           # stochastic depth in the backbone's residual blocks (EfficientDet-D0: 0.2)

image_size = 512
num_classes = 80
data_root = 'data/coco/'
batch_size = 16                # per GPU; LR 0.16 is for a total batch of 128 and is rescaled (auto_scale_lr)

# SyncBN as mmdet's configs state it: mmengine's Runner turns it back into BN when not distributed. The backbone
# converts its own BNs when distributed (sync_bn=True), with timm's converter, which keeps timm's fused BN+activation.
norm_cfg = dict(type='SyncBN', momentum=0.01, eps=1e-3, requires_grad=True)

custom_imports = dict(imports=['mmdet_plugin'], allow_failed_imports=False)

model = dict(
    type='EfficientDet',  # mmdet's RetinaNet plus a build-time neck/backbone width check (mmdet_plugin/detector.py)
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=128,  # stride of P7
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(
        type='BNNASBackbone',
        arch=backbone_arch,
        se=backbone_se,
        out_indices=(1, 2, 3),  # strides 8/16/32 (C3-C5)
        frozen_stages=-1,
        norm_eval=False,
        sync_bn=True,
        drop_path_rate=drop_path_rate,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(
        type='BiFPN',
        in_channels=None,  # taken from the backbone (56/128/432 for the SPOS space)
        num_channels=64,   # D0
        num_repeats=3,     # D0
        num_outs=5,        # P3-P7
        norm_cfg=norm_cfg),
    bbox_head=dict(
        type='EfficientDetHead',
        num_classes=num_classes,
        in_channels=64,
        feat_channels=64,
        stacked_convs=3,   # D0
        num_levels=5,
        norm_cfg=norm_cfg,
        prior_prob=0.01,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,       # anchor side = 4 x stride x 2^(k/3), k = 0, 1, 2
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128],
            center_offset=0.5),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
        # mmdet's FocalLoss in plain PyTorch: mmdet's own would call mmcv's compiled CUDA kernel on a GPU
        loss_cls=dict(type='TorchFocalLoss', use_sigmoid=True, gamma=1.5, alpha=0.25, loss_weight=1.0),
        # EfficientDet's box loss is Huber(delta=0.1) x 50, summed over the 4 coordinates and divided by
        # 4 x #positives. mmdet has no Huber loss, but Huber_d(x) = d * SmoothL1_beta=d(x), and mmdet divides by
        # #positives only, so the same loss is SmoothL1(beta=0.1) with weight 50 * 0.1 / 4 = 1.25.
        loss_bbox=dict(type='SmoothL1Loss', beta=0.1, loss_weight=1.25)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0, ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),  # torchvision's batched_nms; bnnas_effdet_softnms.py: soft-NMS
        max_per_img=100))

# ---------------------------------------------------------------------------------------------------- data
# mmdet's coco_detection.py with EfficientDet's augmentation (random resize 0.1-2.0 x 512, crop 512, flip)
dataset_type = 'CheckedCocoDataset'  # CocoDataset + a clear error on empty/broken annotation files or missing images
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(image_size, image_size)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        max_broken_boxes=10,  # COCO train2017 has 2 zero-height boxes; they are dropped with a warning
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, max_broken_boxes=10, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# ---------------------------------------------------------------------------------------------------- schedule
max_epochs = 300
optim_wrapper = dict(
    optimizer=dict(lr=0.16, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, bypass_duplicate=True),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    # linear warm-up over the first epoch, then cosine to 0 (both stepped per iteration)
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=1, end=max_epochs, T_max=max_epochs - 1,
         convert_to_iter_based=True),
]
# LR 0.16 is for a total batch of 128 (8 GPUs x 16); the runner rescales it linearly to GPUs x batch_size.
auto_scale_lr = dict(enable=True, base_batch_size=128)
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
custom_hooks = [
    # model EMA, decay 0.9998 (mmdet's ExpMomentumEMA uses momentum = 1 - decay)
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True, priority=49),
]

# ---------------------------------------------------------------------------------------------------- runtime
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=3, save_best='coco/bbox_mAP', rule='greater'))
env_cfg = dict(cudnn_benchmark=True)
randomness = dict(seed=0)
