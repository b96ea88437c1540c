"""The detector's path needs no compiled mmcv kernel: the focal loss is mmdet's pure-torch one on every device and
hard NMS is torchvision's. With mmcv's compiled ``nms`` and ``sigmoid_focal_loss`` made to raise (as they do on a GPU
with an mmcv built for the CPU only), the demo detector trains and evaluates; on CPU, the loss equals mmdet's
``py_sigmoid_focal_loss`` and the kept boxes equal mmcv's NMS."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("mmdet.models", reason="mmdet not installed (pip install -e '.[det]')")

import mmdet_plugin  # noqa: E402,F401  (registers the plugin)
from bnnas.errors import BNNASError  # noqa: E402
import mmdet_plugin.nms as plugin_nms  # noqa: E402
from mmdet.models.losses import FocalLoss  # noqa: E402
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet_plugin import EfficientDetHead, TorchFocalLoss  # noqa: E402
from mmdet_plugin.errors import _hook, install_excepthook_for_det_tool  # noqa: E402
from test_detection import _cfg, _demo_cfg, _fake_batch, small_arch, tiny_coco  # noqa: E402,F401

torch.set_num_threads(1)  # see tests/test_detection.py


class CompiledKernelCalled(RuntimeError):
    pass


@pytest.fixture
def no_compiled_kernels(monkeypatch):
    """Every way into mmcv's compiled hard NMS and sigmoid focal loss raises."""

    def raising(name):
        def kernel(*args, **kwargs):
            raise CompiledKernelCalled(f"mmcv's compiled {name} was called")
        return kernel

    nms_module = sys.modules["mmcv.ops.nms"]  # the attribute mmcv.ops.nms is the function
    monkeypatch.setattr(nms_module, "nms", raising("nms"))  # what mmcv's batched_nms looks up by name
    monkeypatch.setattr(nms_module.ext_module, "nms", raising("nms"))
    focal_module = sys.modules["mmcv.ops.focal_loss"]
    for name in ("sigmoid_focal_loss_forward", "sigmoid_focal_loss_backward"):
        monkeypatch.setattr(focal_module.ext_module, name, raising(name))
    monkeypatch.setattr(sys.modules["mmdet.models.losses.focal_loss"], "_sigmoid_focal_loss",
                        raising("sigmoid_focal_loss"))


@pytest.fixture
def counted_nms(monkeypatch) -> list[int]:
    """Number of boxes handed to torchvision's batched_nms, per call."""
    calls: list[int] = []
    real = plugin_nms.batched_nms
    monkeypatch.setattr(plugin_nms, "batched_nms", lambda b, s, i, t: (calls.append(len(b)), real(b, s, i, t))[1])
    return calls


class _OnCuda(torch.Tensor):
    """A CPU tensor that says it is on CUDA: mmdet's FocalLoss picks its kernel by ``pred.is_cuda``."""

    @property
    def is_cuda(self) -> bool:
        return True


def test_the_fixture_blocks_mmcv_kernels(no_compiled_kernels, monkeypatch):
    from mmcv.ops import batched_nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
    with pytest.raises(CompiledKernelCalled):
        batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.zeros(2, dtype=torch.long), dict(type="nms", iou_threshold=0.5))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(CompiledKernelCalled):  # mmdet's own loss on a "CUDA" prediction
        FocalLoss()(torch.randn(4, 3).as_subclass(_OnCuda), torch.tensor([0, 1, 2, 3]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_focal_loss_equals_mmdet_py_sigmoid_focal_loss(reduction, no_compiled_kernels, monkeypatch):
    torch.manual_seed(0)
    n, c = 50, 7
    pred = torch.randn(n, c, requires_grad=True)
    labels = torch.randint(0, c + 1, (n,))  # label c = background
    weight = torch.rand(n)
    kw = dict(gamma=1.5, alpha=0.25)
    ours = TorchFocalLoss(**kw, reduction=reduction, loss_weight=2.0)
    assert isinstance(MODELS.build(dict(type="TorchFocalLoss")), TorchFocalLoss)
    ref_pred = pred.detach().clone().requires_grad_(True)
    for avg_factor in (None, 13.0) if reduction != "sum" else (None,):  # mmdet refuses avg_factor with "sum"
        got = ours(pred, labels, weight, avg_factor=avg_factor)
        want = 2.0 * py_sigmoid_focal_loss(ref_pred, F.one_hot(labels, c + 1)[:, :c], weight, reduction=reduction,
                                           avg_factor=avg_factor, **kw)
        assert torch.allclose(got, want, rtol=1e-6, atol=1e-7)
        got.sum().backward()
        want.sum().backward()
        assert torch.allclose(pred.grad, ref_pred.grad, rtol=1e-6, atol=1e-7)
        # mmdet's own FocalLoss on the CPU takes the same pure-torch path
        stock = FocalLoss(**kw, reduction=reduction, loss_weight=2.0)(pred, labels, weight, avg_factor=avg_factor)
        assert torch.allclose(got, stock)
    assert torch.allclose(ours(pred, labels, weight, reduction_override="sum"),
                          2.0 * py_sigmoid_focal_loss(pred, F.one_hot(labels, c + 1)[:, :c], weight, reduction="sum",
                                                      **kw))
    # on a CUDA prediction too: no compiled kernel (the fixture would raise)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_cuda = ours(pred.detach().as_subclass(_OnCuda), labels, weight)
    assert torch.allclose(on_cuda.as_subclass(torch.Tensor), ours(pred.detach(), labels, weight))


def _random_boxes(n: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    scores = torch.randperm(n, generator=g).float() / n + 0.01  # distinct: no ties to break differently
    return torch.cat([xy, xy + wh], 1), scores, torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("n", [300, 1500])  # torchvision switches to a per-class loop above 1000 boxes on CPU
@pytest.mark.parametrize("class_agnostic", [False, True])
def test_hard_nms_keeps_what_mmcv_keeps(n, class_agnostic):
    from mmcv.ops import batched_nms

    boxes, scores, labels = _random_boxes(n, 5, seed=n)
    cfg = dict(type="nms", iou_threshold=0.5, class_agnostic=class_agnostic)
    dets, keep = batched_nms(boxes, scores, labels, dict(cfg))  # mmcv's compiled CPU kernel
    ours = plugin_nms.hard_nms_keep(boxes, scores, labels, cfg)
    assert 0 < len(keep) < n and torch.equal(ours, keep)
    assert torch.equal(scores[ours], dets[:, -1])
    with pytest.raises(BNNASError, match=r"\['offset'\]"):
        plugin_nms.hard_nms_keep(boxes, scores, labels, dict(cfg, offset=1))


def test_head_predictions_equal_mmdet_post_processing(no_compiled_kernels, monkeypatch):
    """The demo detector's boxes with torchvision's NMS are those of mmdet's own post-processing (mmcv's kernel)."""
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead

    cfg = _cfg("bnnas_effdet_demo.py")
    cfg.model.backbone.arch = small_arch().to_dict()
    cfg.model.test_cfg.score_thr = 0.0  # an untrained model: keep its many weak boxes for NMS to sort out
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    batch = model.data_preprocessor(_fake_batch(model, size=128, num_classes=10), False)
    with torch.no_grad():
        ours = model(**batch, mode="predict")
    monkeypatch.undo()  # mmcv's kernels back, and mmdet's post-processing in place of the plugin's
    monkeypatch.setattr(EfficientDetHead, "_bbox_post_process", BaseDenseHead._bbox_post_process)
    with torch.no_grad():
        stock = model(**batch, mode="predict")
    for a, b in zip(ours, stock):
        a, b = a.pred_instances, b.pred_instances
        assert 0 < len(a) <= 100 and len(a) == len(b)
        for key in ("bboxes", "scores", "labels"):
            assert torch.equal(a[key], b[key]), key


@pytest.mark.slow
def test_demo_detector_trains_and_evaluates_without_compiled_kernels(no_compiled_kernels, counted_nms, tiny_coco,
                                                                     tmp_path):
    """mmengine's Runner (what ``mim train`` runs): a few iterations, then validation with NMS, kernels raising."""
    from mmengine.runner import Runner

    cfg = _demo_cfg(tiny_coco, tmp_path)
    cfg.train_dataloader.batch_size = 2  # 8 images: 4 iterations
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = 1
    cfg.model.test_cfg.score_thr = 0.0  # an untrained model: boxes must reach the NMS
    cfg.log_level = "WARNING"
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    assert 0.0 <= runner.message_hub.get_scalar("val/coco/bbox_mAP").current() <= 1.0
    assert len(counted_nms) == 6 and all(n > 0 for n in counted_nms)  # one NMS per validation image


def test_retinanet_config_without_compiled_kernels(no_compiled_kernels, counted_nms):
    cfg = _cfg("bnnas_retinanet_fpn.py")
    assert cfg.model.bbox_head.type == "TorchNMSRetinaHead" and cfg.model.bbox_head.loss_cls.type == "TorchFocalLoss"
    assert cfg.model.bbox_head.loss_cls.gamma == 2.0  # the rest of mmdet's loss settings are inherited
    cfg.model.test_cfg.score_thr = 0.0
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = _fake_batch(model, size=64, num_classes=cfg.model.bbox_head.num_classes)
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode="loss")
    sum(v.sum() if isinstance(v, torch.Tensor) else sum(v) for v in losses.values()).backward()
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(data, False), mode="predict")
    assert len(preds) == 2 and len(counted_nms) == 2 and len(preds[0].pred_instances) > 0


def test_soft_nms_stays_on_mmcv_cpu_op(no_compiled_kernels, counted_nms):
    cfg = _cfg("bnnas_effdet_demo_softnms.py")
    cfg.model.backbone.arch = small_arch().to_dict()
    cfg.model.test_cfg.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(_fake_batch(model, 128, 10), False), mode="predict")
    assert len(preds[0].pred_instances) > 0 and not counted_nms  # mmcv's soft_nms, not the hard NMS


def test_plugin_import_leaves_excepthook_alone(monkeypatch):
    """Imported (as above), the plugin installed no hook; only a process that tools/det.py started gets one."""
    assert sys.excepthook is not _hook
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook_for_det_tool()
    assert sys.excepthook is not _hook
    monkeypatch.setenv("BNNAS_ERROR_FILE", "/tmp/unused")
    install_excepthook_for_det_tool()
    assert sys.excepthook is _hook
