"""Row 5: detector train step and inference img/s at 512x512, BNNAS-EffDet (configs/bnnas_effdet.py, our mmdet plugin)
vs effdet's efficientdet_d0, same device, batch, precision, memory format and optimizer.

Both steps start from device-resident normalised images and ground-truth boxes (10 per image, the same boxes for
both; xyxy for mmdet, yxyx + 1-based classes for effdet) and include target assignment on the device (mmdet's
MaxIoUAssigner inside ``loss``; effdet's AnchorLabeler via ``bench_labeler=True``), the loss, backward, gradient-norm
clipping at 10 (both configs) and an SGD step (fused on GPU). Inference is the full ``predict`` path of each
(forward, top-k, NMS, at most 100 boxes). The top 3 kernels of each train step come from torch.profiler.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from util import RowResult, Stat, count_macs, interleaved, top_kernels

ROOT = Path(__file__).resolve().parents[1]


def _boxes(B: int, res: int, n: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    wh = torch.exp(torch.empty(B, n, 2).uniform_(np.log(16), np.log(res * 0.6), generator=g))
    xy = torch.rand(B, n, 2, generator=g) * (res - wh)
    xyxy = torch.cat([xy, xy + wh], -1)
    labels = torch.randint(0, 80, (B, n), generator=g)
    return xyxy.to(device), labels.to(device)


def _ours(device, res: int, xyxy, labels, compile_: bool):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.structures import InstanceData
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules

    import mmdet_plugin  # noqa: F401  (registers BNNASBackbone, BiFPN, EfficientDetHead, EfficientDet)

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(ROOT / "configs" / "bnnas_effdet.py"))
    cfg.model.channels_last = True
    cfg.model.backbone.init_cfg.checkpoint = "scratch"  # random weights time the same as trained ones
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # the config's SyncBN, as the Runner runs it on one device
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel(logging.WARNING)  # init_weights logs every parameter at INFO
    model.init_weights()
    model.to(device)
    samples = []
    for b in range(len(xyxy)):
        s = DetDataSample(metainfo=dict(img_shape=(res, res), ori_shape=(res, res), pad_shape=(res, res),
                                        batch_input_shape=(res, res), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(bboxes=xyxy[b], labels=labels[b])
        samples.append(s)
    if compile_:
        for m in (model.backbone, model.neck, model.bbox_head):
            m.compile()
    return model, samples


def _effdet(device, res: int, compile_: bool):
    import effdet

    train = effdet.create_model("efficientdet_d0", bench_task="train", pretrained=False, pretrained_backbone=False,
                                num_classes=80, bench_labeler=True, image_size=(res, res))
    predict = effdet.DetBenchPredict(train.model)
    train.to(device)
    train.model.to(memory_format=torch.channels_last)
    if compile_:
        train.model.compile()
    return train, predict


def run(cfg, device: torch.device, devname: str) -> RowResult:
    from bnnas.training.engine import autocast, build_optimizer

    B, res = cfg.det_batch, cfg.det_res
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    x = torch.randn(B, 3, res, res, device=device).contiguous(memory_format=torch.channels_last)
    xyxy, labels = _boxes(B, res, 10, device)
    ours, samples = _ours(device, res, xyxy, labels, cfg.compile)
    ed_train, ed_pred = _effdet(device, res, cfg.compile)
    target = {"bbox": xyxy[..., [1, 0, 3, 2]].float(), "cls": (labels + 1).float(),
              "img_scale": torch.ones(B, device=device), "img_size": torch.full((B, 2), res, device=device).float()}
    opt_ours = build_optimizer(ours, 0.01, 0.9, 4e-5)
    opt_ed = build_optimizer(ed_train, 0.01, 0.9, 4e-5)

    gts = [s.gt_instances for s in samples]
    metas = [s.metainfo for s in samples]

    def step_ours():  # = ours.loss(x, samples), with the loss (the plugin's pure-torch focal loss) in fp32
        ours.train()
        opt_ours.zero_grad(set_to_none=True)
        with autocast(device, True):
            cls, reg = ours.bbox_head(ours.extract_feat(x))
        losses = ours.bbox_head.loss_by_feat([c.float() for c in cls], [r.float() for r in reg], gts, metas)
        loss = sum(v.sum() if torch.is_tensor(v) else sum(v) for v in losses.values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in ours.parameters() if p.grad is not None], 10.0)
        opt_ours.step()

    def step_ed():
        ed_train.train()
        opt_ed.zero_grad(set_to_none=True)
        with autocast(device, True):
            out = ed_train(x, target)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_([p for p in ed_train.parameters() if p.grad is not None], 10.0)
        opt_ed.step()

    def infer_ours():  # = ours.predict(x, samples): network under autocast, box decoding + NMS (torchvision) in fp32
        ours.eval()
        with torch.inference_mode():
            with autocast(device, True):
                cls, reg = ours.bbox_head(ours.extract_feat(x))
            return ours.bbox_head.predict_by_feat([c.float() for c in cls], [r.float() for r in reg],
                                                  batch_img_metas=metas, rescale=False)

    def infer_ed():
        ed_pred.eval()
        with torch.inference_mode(), autocast(device, True):
            return ed_pred(x)

    macs_ours = count_macs(ours, lambda: ours.eval()._forward(x[:1], samples[:1]))
    macs_ed = count_macs(ed_train.model, lambda: ed_train.model.eval()(x[:1]))
    t = interleaved({"train_ours": step_ours, "train_effdet": step_ed, "infer_ours": infer_ours,
                     "infer_effdet": infer_ed}, cfg.det_warmup, cfg.reps_det, device)
    n_ours = len(infer_ours()[0])
    n_ed = int((infer_ed()[0][:, 4] > 0.05).sum())

    kernels = {}
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    for name, fn in (("ours", step_ours), ("effdet", step_ed)):
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(2 if device.type == "cuda" else 1):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
        kernels[name] = top_kernels(prof, device, 3)

    train_ratio = Stat(t["train_effdet"] / t["train_ours"])
    infer_ratio = Stat(t["infer_effdet"] / t["infer_ours"])
    ips = {k: B / v for k, v in t.items()}
    r = RowResult(5, "detector train step and inference img/s at 512x512, BNNAS-EffDet vs effdet efficientdet_d0",
                  "measure in the same run", ">= 1.0x effdet d0; top-3 kernels named")
    r.ours = (f"train {train_ratio.median:.2f}x, inference {infer_ratio.median:.2f}x effdet d0 "
              f"({np.median(ips['train_ours']):.1f} / {np.median(ips['infer_ours']):.1f} img/s)")
    r.met = train_ratio.median >= 1.0 and infer_ratio.median >= 1.0
    prec = "bf16 autocast" if device.type == "cuda" else "fp32"
    r.details += [
        f"{devname}; batch {B} at {res}x{res}, {prec}, channels_last, {'torch.compile' if cfg.compile else 'eager'}",
        f"MACs/img: BNNAS-EffDet {macs_ours / 1e9:.2f} G, effdet d0 {macs_ed / 1e9:.2f} G (paper convention)",
        f"train img/s  ours {Stat(ips['train_ours']).fmt(2)}; effdet {Stat(ips['train_effdet']).fmt(2)}",
        f"infer img/s  ours {Stat(ips['infer_ours']).fmt(2)}; effdet {Stat(ips['infer_effdet']).fmt(2)}",
        f"speed ratio (effdet time / ours): train {train_ratio.fmt(2)}; inference {infer_ratio.fmt(2)}",
        f"top-3 {'CUDA kernels' if device.type == 'cuda' else 'CPU ops (self time)'} of a train step, ours:   "
        + "; ".join(kernels["ours"]),
        f"top-3 {'CUDA kernels' if device.type == 'cuda' else 'CPU ops (self time)'} of a train step, effdet: "
        + "; ".join(kernels["effdet"]),
        f"(random init: {n_ours} / {n_ed} boxes kept per image after NMS + score 0.05; the post-processing cost of "
        "an untrained model is not representative)",
    ]
    r.data = {k: v.tolist() for k, v in t.items()} | {"kernels": kernels, "macs_ours": macs_ours, "macs_effdet": macs_ed}
    return r
