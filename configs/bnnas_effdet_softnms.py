# configs/bnnas_effdet.py tested with the TF reference's soft-NMS (Gaussian, sigma 0.5, no hard IoU cut, boxes kept
# down to score 0.001), through mmcv's soft_nms as mmdet's batched_nms calls it:
#
#   mim test mmdet configs/bnnas_effdet_softnms.py --checkpoint work_dirs/bnnas_effdet/epoch_300.pth
_base_ = './bnnas_effdet.py'

model = dict(test_cfg=dict(nms=dict(_delete_=True, type='soft_nms', method='gaussian', sigma=0.5, min_score=0.001)))
