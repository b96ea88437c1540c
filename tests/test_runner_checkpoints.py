"""Checkpoints written by a real mmengine Runner load under torch's default ``weights_only=True``: ``Runner.test``
(what ``mim test`` runs) reads one, and a resumed run continues at the next epoch. Also the one-line errors a user
sees when the detector cannot start (no backbone checkpoint, broken COCO file through ``tools/det.py``)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("mmdet.models", reason="mmdet not installed (pip install -e '.[det]')")

from mmengine.config import Config  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.registry import HOOKS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import mmdet_plugin  # noqa: E402,F401  (registers the plugin and the safe globals)
from bnnas.core.arch import Arch  # noqa: E402
from bnnas.export import export_backbone  # noqa: E402
from bnnas.outputs.checkpoint import atomic_save  # noqa: E402
from bnnas.data.coco_synth import SynthConfig, make_coco_demo  # noqa: E402
from bnnas.errors import BNNASError  # noqa: E402
from bnnas.core.space import get_space  # noqa: E402
from bnnas.core.subnet import SubNet  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmdet_plugin.checkpoint_globals import runner_checkpoint_globals  # noqa: E402
from mmdet_plugin.errors import plugin_message  # noqa: E402

register_all_modules(init_default_scope=True)
ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # see tests/test_detection.py: OpenMP spinning on a busy 2-core machine


@HOOKS.register_module(force=True)
class RecordEpochsHook(Hook):
    """Remembers (epoch, iter) at the start of every training epoch."""

    def __init__(self):
        self.starts: list[tuple[int, int]] = []

    def before_train_epoch(self, runner) -> None:
        self.starts.append((runner.epoch, runner.iter))


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """Tiny COCO set (8 train / 4 val images at 64 px) and an exported backbone of a small spos-small arch."""
    root = tmp_path_factory.mktemp("runner_ckpt")
    data = root / "coco"
    make_coco_demo(data, SynthConfig(num_train=8, num_val=4, image_size=64, min_object=20, max_object=40,
                                     max_objects=1, seed=3))
    space = get_space("spos-small")
    arch = Arch.from_ops(space, ["k3e3"] * len(space.layers))
    torch.manual_seed(0)
    atomic_save({"kind": "subnet", "state_dict": SubNet(arch).state_dict(), "arch": arch.to_dict(), "se": False},
                root / "sub.pth")
    export_backbone(root / "sub.pth", root / "backbone.pth")
    return {"root": root, "data": data, "arch": arch.to_dict(), "backbone": root / "backbone.pth"}


def _cfg(setup: dict, work_dir: Path, max_epochs: int) -> Config:
    cfg = Config.fromfile(str(ROOT / "configs" / "bnnas_effdet_demo.py"))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.arch = copy.deepcopy(setup["arch"])
    cfg.model.backbone.init_cfg.checkpoint = str(setup["backbone"])
    cfg.model.data_preprocessor.batch_augments = None
    for dl in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        dl.dataset.data_root = str(setup["data"]) + "/"
        dl.batch_size = 4
    cfg.train_dataloader.dataset.pipeline = [p for p in cfg.train_dataloader.dataset.pipeline
                                             if p["type"] not in ("RandomResize", "RandomCrop")]
    ann = str(setup["data"] / "annotations" / "instances_val2017.json")
    cfg.val_evaluator.ann_file = ann
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    cfg.train_cfg.max_epochs = max_epochs
    cfg.train_cfg.val_interval = 100  # no validation inside these short runs
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=1, max_keep_ckpts=3)
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = list(cfg.custom_hooks) + [dict(type="RecordEpochsHook")]
    cfg.log_level = "WARNING"
    return cfg


def _recorded(runner: Runner) -> list[tuple[int, int]]:
    return next(h for h in runner.hooks if isinstance(h, RecordEpochsHook)).starts


@pytest.mark.slow
def test_runner_checkpoint_loads_for_test_and_resume(setup, tmp_path):
    work = tmp_path / "work"
    runner = Runner.from_cfg(_cfg(setup, work, max_epochs=1))
    runner.train()
    ckpt = work / "epoch_1.pth"
    assert ckpt.is_file() and _recorded(runner) == [(0, 0)]

    # the file holds non-tensor objects, exactly those the plugin allows, and loads with torch's defaults
    registered = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()  # the query skips globals that are already allowed
    try:
        found = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt)))
        with pytest.raises(Exception, match="Weights only load failed"):
            torch.load(ckpt)  # what mim test hit before the plugin registered them
    finally:
        torch.serialization.add_safe_globals(registered)
    allowed = {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}"
               for g in runner_checkpoint_globals()}
    assert "mmengine.logging.history_buffer.HistoryBuffer" in found and found <= allowed, found - allowed
    state = torch.load(ckpt)  # weights_only=True (torch's default)
    assert state["meta"]["epoch"] == 1 and "ema_state_dict" in state and "message_hub" in state
    assert state["message_hub"]["log_scalars"]["train/loss"].mean() > 0

    # Runner.test (mim test) from that checkpoint: the model gets the file's weights and COCOeval runs
    cfg = _cfg(setup, tmp_path / "test", max_epochs=1)
    cfg.load_from = str(ckpt)
    cfg.model.test_cfg.score_thr = 0.0  # one epoch: scores are still near the 0.01 prior
    tester = Runner.from_cfg(cfg)
    metrics = tester.test()
    assert "coco/bbox_mAP" in metrics
    loaded = tester.model.state_dict()
    for k, v in state["state_dict"].items():
        assert torch.equal(loaded[k], v), k

    # resume (mim train --resume): epoch 2 starts where epoch 1 ended, at iteration 2 (8 images / batch 4)
    cfg = _cfg(setup, work, max_epochs=2)
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert _recorded(resumed) == [(1, 2)]
    assert torch.load(work / "epoch_2.pth")["meta"]["epoch"] == 2


def test_weights_only_still_refuses_other_callables(tmp_path):
    """The getattr stand-in resolves only HistoryBuffer's statistics, so a crafted pickle cannot walk from the class
    to other objects (``__init__.__globals__`` ... ``os.system``)."""
    import pickle

    from mmengine.logging import HistoryBuffer

    class Evil:
        def __reduce__(self):
            return getattr, (HistoryBuffer, "__init__")

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


@pytest.mark.slow
def test_missing_backbone_checkpoint_is_one_line(setup, tmp_path):
    cfg = _cfg(setup, tmp_path / "w", max_epochs=1)
    cfg.model.backbone.init_cfg.checkpoint = None
    runner = Runner.from_cfg(cfg)
    with pytest.raises(BNNASError, match="tools/export_backbone.py") as e:
        runner.train()
    assert "\n" not in str(e.value)
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / "nope.pth")
    with pytest.raises(BNNASError, match=r"nope.pth not found; .*tools/export_backbone.py"):
        Runner.from_cfg(cfg).train()


def test_plugin_message_strips_registry_prefixes():
    try:
        try:
            raise BNNASError("instances_train2017.json lists no images")
        except BNNASError as inner:
            raise BNNASError(f"class `CheckedCocoDataset` in mmdet_plugin/datasets.py: {inner}") from None
    except BNNASError as outer:
        assert plugin_message(outer) == "instances_train2017.json lists no images"
    assert plugin_message(ValueError("x")) is None


@pytest.mark.slow
def test_broken_coco_error_is_the_last_line(setup, tmp_path):
    """`python tools/det.py train ...` (mim train underneath) on an empty annotation file ends with the plugin's
    message, after mmdet's and mim's output."""
    broken = tmp_path / "coco"
    (broken / "annotations").mkdir(parents=True)
    d = json.loads((setup["data"] / "annotations" / "instances_train2017.json").read_text())
    d.update(images=[], annotations=[])
    (broken / "annotations" / "instances_train2017.json").write_text(json.dumps(d))
    (broken / "train2017").symlink_to(setup["data"] / "train2017")
    cmd = [sys.executable, str(ROOT / "tools" / "det.py"), "train", str(ROOT / "configs" / "bnnas_effdet_demo.py"),
           "--gpus", "0", "--work-dir", str(tmp_path / "w"), "--cfg-options",
           f"train_dataloader.dataset.data_root={broken}/", f"model.backbone.init_cfg.checkpoint={setup['backbone']}",
           f"model.backbone.arch={setup['root'] / 'arch.json'}"]
    (setup["root"] / "arch.json").write_text(json.dumps(setup["arch"]))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=300,
                       cwd=str(tmp_path))
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert p.returncode == 2, p.stdout[-3000:]
    assert lines[-1].startswith("error: ") and "lists no images" in lines[-1], lines[-5:]
    assert "class `" not in lines[-1] and "CalledProcessError" not in p.stdout
