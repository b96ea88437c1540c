# CPU demo of configs/bnnas_effdet.py on the built-in digits detection set (no download, a few minutes on 2 cores):
#
#   python tools/make_coco_demo.py                     # writes data/coco_demo/ (400 train / 100 val, 256 px)
#   mim train mmdet configs/bnnas_effdet_demo.py       # trains, then evaluates with pycocotools (CocoMetric)
#
# Same model family as the D0 config (BN-NAS backbone, BiFPN, EfficientDet head, focal + Huber losses, EMA);
# smaller input, a short schedule and a higher LR so that a from-scratch model learns
# something measurable in minutes. Not a benchmark: the digits are easy and the schedule is tiny.
_base_ = './bnnas_effdet.py'

image_size = 128  # the set's 256 px images are resized to 128 (digits become ~20-60 px)
num_classes = 10
classes = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')
data_root = 'data/coco_demo/'
max_epochs = 6
batch_size = 8
norm_cfg = dict(type='BN', momentum=0.01, eps=1e-3, requires_grad=True)

model = dict(
    channels_last=True,  # ~2-3x faster depthwise convs on CPU
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[dict(type='BatchFixedSizePad', size=(image_size, image_size))]),
    backbone=dict(sync_bn=False),
    neck=dict(norm_cfg=norm_cfg),
    bbox_head=dict(num_classes=num_classes, norm_cfg=norm_cfg))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.75, 1.25), keep_ratio=True),
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
    num_workers=0,  # loading 192 px JPEGs is cheap; a worker process would compete for the 2 cores
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
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1, save_best=None),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=10)
