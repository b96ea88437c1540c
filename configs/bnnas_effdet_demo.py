# CPU demo of configs/bnnas_effdet.py on the built-in digits detection set, from a searched, retrained and exported
# BN-NAS backbone (no download; scripts/demo_detection.sh runs the whole chain in about 20 min on 2 cores):
#
#   scripts/demo_detection.sh work_dirs/demo_detection
#
# By hand, after tools/search.py, tools/retrain.py and tools/export_backbone.py wrote the two files named below:
#   python tools/make_coco_demo.py --num-train 800     # data/coco_demo/
#   mim train mmdet configs/bnnas_effdet_demo.py --gpus 0
#   mim test  mmdet configs/bnnas_effdet_demo.py --gpus 0 --checkpoint work_dirs/bnnas_effdet_demo/epoch_10.pth
#
# Same model family as the D0 config (BN-NAS backbone, BiFPN, EfficientDet head, focal + Huber losses, EMA), sized
# for a CPU: the digits backbone (spos-small space, strides 8/16 used), P3-P6, a short schedule.
_base_ = './bnnas_effdet.py'

backbone_arch = 'work_dirs/demo_detection/search/arch.json'   # tools/search.py output (spos-small space)
backbone_checkpoint = 'work_dirs/demo_detection/backbone.pth'  # tools/export_backbone.py output

image_size = 128
num_classes = 10
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
data_root = 'data/coco_demo/'
max_epochs = 10
batch_size = 8
norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)
levels = 4  # P3-P6 (strides 8-64): the digits are 16-60 px in 128 px images

model = dict(
    channels_last=True,  # ~2-3x faster depthwise convs on CPU
    data_preprocessor=dict(
        pad_size_divisor=64,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(
        arch=backbone_arch,
        out_indices=(2, 3),  # spos-small levels 2, 3: strides 8 and 16 (96 and 160 channels)
        sync_bn=False,
        drop_path_rate=0.0,  # a 12-epoch schedule has nothing to regularise
        init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(num_outs=levels, norm_cfg=norm_cfg),
    bbox_head=dict(
        num_classes=num_classes,
        num_levels=levels,
        norm_cfg=norm_cfg,
        anchor_generator=dict(strides=[8, 16, 32, 64])))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(image_size, image_size)),
    # no flip: mirrored digits are not digits
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,  # decoding 128 px JPEGs is cheap; a worker process would compete for the 2 cores
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        max_broken_boxes=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        max_broken_boxes=0,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.08))
auto_scale_lr = dict(enable=False)  # the demo LR is for its own batch size
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_best=None))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=10)
