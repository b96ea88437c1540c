"""``bnnas export-onnx``: the demo arch (classifier) and the demo detector (raw head outputs) run in onnxruntime
within the stated tolerance of PyTorch; a failed check or a taken --out is one line and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bnnas.cli.main import main as bnnas
from bnnas.core.arch import Arch, save_arch
from bnnas.core.space import get_space
from bnnas.core.subnet import SubNet
from bnnas.outputs.checkpoint import atomic_save
from conftest import one_line_error

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
ROOT = Path(__file__).resolve().parents[1]
# an arch of the demo's space (spos-small-res), with identities, both kernels and both expansions
DEMO_OPS = ["k3e6", "k3e3", "k3e6", "id", "k5e6", "k3e6", "k7e3", "id", "k3e6", "k5e3", "k3e6", "k7e6"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, Path]:
    """arch.json and a retrained-like subnet checkpoint whose BNs hold non-trivial statistics (so that onnxruntime's
    Conv+BN folding is exercised, not folded away as the identity)."""
    d = tmp_path_factory.mktemp("onnx")
    arch = Arch.from_ops(get_space("spos-small-res"), DEMO_OPS)
    save_arch(arch, d / "arch.json")
    torch.manual_seed(1)
    net = SubNet(arch, dropout=0.0)
    _perturb_norms(net)
    atomic_save({"kind": "subnet", "arch": arch.to_dict(), "se": False, "state_dict": net.state_dict()},
                d / "best.pth")
    return d / "arch.json", d / "best.pth"


def _report(capsys) -> dict:
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out.strip().splitlines()[-2])  # the diff line, for the log (-s)
    return json.loads(out.strip().splitlines()[-1])


def test_demo_arch_classifier_matches_torch_in_onnxruntime(demo, tmp_path, capsys):
    import onnx

    arch, ckpt = demo
    out = tmp_path / "net.onnx"
    assert bnnas(["export-onnx", "--arch", str(arch), "--checkpoint", str(ckpt), "--out", str(out),
                  "--batch", "4"]) == 0
    doc = _report(capsys)
    onnx.checker.check_model(onnx.load(str(out)))
    assert doc["input"] == [4, 3, 32, 32] and doc["max_abs_diff"] <= doc["tolerance"]
    assert doc["tolerance"] == pytest.approx(1e-4 * doc["output_scale"]) and doc["output_scale"] > 0.1


def test_failed_check_and_taken_out_write_nothing(demo, tmp_path, capsys, monkeypatch):
    import bnnas.core.onnx_io as onnx_io

    arch, _ = demo
    out = tmp_path / "net.onnx"
    monkeypatch.setattr(onnx_io, "RELATIVE_TOLERANCE", -1.0)  # no difference passes
    rc = bnnas(["export-onnx", "--arch", str(arch), "--out", str(out)])
    one_line_error(rc, capsys.readouterr().err, "disagrees with PyTorch", "nothing written")
    assert not out.exists()
    out.write_text("keep")
    rc = bnnas(["export-onnx", "--arch", str(arch), "--out", str(out)])
    one_line_error(rc, capsys.readouterr().err, "exists", "--force")
    assert out.read_text() == "keep"


def _perturb_norms(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters everywhere (random init leaves them at 0/1)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.2), m.running_var.uniform_(0.5, 2.0), m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)


@pytest.mark.slow
def test_demo_detector_raw_head_outputs_match_torch_in_onnxruntime(demo, tmp_path, capsys):
    pytest.importorskip("mmdet")
    from mmdet_plugin.onnx import build_raw_detector

    arch, _ = demo
    config = str(ROOT / "configs/bnnas_effdet_demo.py")
    det = build_raw_detector(config, str(arch), None, None)[0].detector
    torch.manual_seed(2)
    _perturb_norms(det)
    torch.save({"state_dict": det.state_dict()}, tmp_path / "epoch_1.pth")  # as mim train writes it
    out = tmp_path / "det.onnx"
    assert bnnas(["export-onnx", "--arch", str(arch), "--detector", config, "--checkpoint",
                  str(tmp_path / "epoch_1.pth"), "--out", str(out)]) == 0
    doc = _report(capsys)
    assert doc["what"] == "detector raw head outputs" and doc["input"] == [1, 3, 128, 128]
    assert doc["max_abs_diff"] <= doc["tolerance"]
    import onnxruntime as ort

    outputs = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).get_outputs()
    assert len(outputs) == 8  # P3-P6 class scores, then P3-P6 box regressions
    assert outputs[0].shape[2:] == [16, 16] and outputs[7].shape[2:] == [2, 2]
