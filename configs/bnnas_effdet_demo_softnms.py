# configs/bnnas_effdet_demo.py tested with the TF reference's soft-NMS (see configs/bnnas_effdet_softnms.py):
#
#   mim test mmdet configs/bnnas_effdet_demo_softnms.py --gpus 0 --checkpoint work_dirs/bnnas_effdet_demo/epoch_12.pth
_base_ = './bnnas_effdet_demo.py'

model = dict(test_cfg=dict(nms=dict(_delete_=True, type='soft_nms', method='gaussian', sigma=0.5, min_score=0.001)))
