"""tools/export_backbone.py and bnnas.export (no mmdet needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnnas.core.arch import load_arch
from bnnas.export import BACKBONE_KIND, export_backbone, load_backbone_state
from bnnas.outputs.checkpoint import atomic_save
from bnnas.errors import BNNASError
from bnnas.core.subnet import SubNet
from conftest import subnet_features

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "export_backbone.py"


def _retrained(path: Path, preset: str = "bnnas-spos", se: bool = False, seed: int = 0) -> SubNet:
    """A stand-in for a tools/retrain.py checkpoint: random weights and BN statistics, in the documented format."""
    torch.manual_seed(seed)
    arch = load_arch(preset)
    net = SubNet(arch, se=se)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    atomic_save({"kind": "subnet", "state_dict": net.state_dict(), "arch": arch.to_dict(), "se": se, "epoch": 7}, path)
    return net.eval()


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_export_tool_roundtrip(tmp_path):
    net = _retrained(tmp_path / "sub.pth")
    r = _run("--arch", "bnnas-spos", "--checkpoint", str(tmp_path / "sub.pth"), "--out", str(tmp_path / "bb.pth"))
    assert r.returncode == 0, r.stderr
    ck = torch.load(tmp_path / "bb.pth", map_location="cpu", weights_only=True)  # plain types only
    assert ck["kind"] == BACKBONE_KIND and ck["se"] is False and ck["epoch"] == 7
    assert ck["arch"]["ops"] == load_arch("bnnas-spos").ops
    assert not any(k.startswith("head.") for k in ck["state_dict"])
    expected = {k: v for k, v in net.state_dict().items() if not k.startswith("head.")}
    assert ck["state_dict"].keys() == expected.keys()
    assert all(torch.equal(ck["state_dict"][k], v) for k, v in expected.items())
    # a fresh SubNet with these weights computes the same features
    fresh = SubNet(load_arch("bnnas-spos"))
    fresh.load_state_dict({**fresh.state_dict(), **ck["state_dict"]})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(subnet_features(net, x), subnet_features(fresh.eval(), x)):
            assert torch.equal(a, b)


def test_export_default_arch_and_se(tmp_path):
    _retrained(tmp_path / "sub.pth", preset="abs-fairnas", se=True)
    meta = export_backbone(tmp_path / "sub.pth", tmp_path / "bb.pth")
    assert meta["se"] is True and meta["arch"]["space"] == "fairnas-imagenet"
    state = load_backbone_state(tmp_path / "bb.pth", load_arch("abs-fairnas"), se=True)
    assert any(".se." in k for k in state)
    with pytest.raises(BNNASError, match="se=True but the backbone is configured with se=False"):
        load_backbone_state(tmp_path / "bb.pth", load_arch("abs-fairnas"), se=False)


@pytest.mark.slow
def test_export_refuses_other_arch(tmp_path):
    _retrained(tmp_path / "sub.pth")
    r = _run("--arch", "spos", "--checkpoint", str(tmp_path / "sub.pth"), "--out", str(tmp_path / "bb.pth"))
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "configured arch" in r.stderr and "differ" in r.stderr
    assert not (tmp_path / "bb.pth").exists()


@pytest.mark.slow
def test_export_refuses_weights_that_do_not_fit_the_arch(tmp_path):
    """A checkpoint whose stored arch says bnnas-spos but whose weights are SPOS's: strict load refuses it."""
    other = SubNet(load_arch("spos"))
    atomic_save({"kind": "subnet", "state_dict": other.state_dict(), "arch": load_arch("bnnas-spos").to_dict()},
                tmp_path / "liar.pth")
    r = _run("--checkpoint", str(tmp_path / "liar.pth"), "--out", str(tmp_path / "bb.pth"))
    assert r.returncode == 2 and "does not match the model" in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.slow
def test_export_other_errors(tmp_path):
    r = _run("--checkpoint", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "bb.pth"))
    assert r.returncode == 2 and "checkpoint not found" in r.stderr
    atomic_save({"kind": "supernet", "state_dict": {}}, tmp_path / "sn.pth")
    r = _run("--checkpoint", str(tmp_path / "sn.pth"), "--out", str(tmp_path / "bb.pth"))
    assert r.returncode == 2 and "pass --arch" in r.stderr


def test_load_backbone_state_refuses_other_arch(tmp_path):
    _retrained(tmp_path / "sub.pth")
    export_backbone(tmp_path / "sub.pth", tmp_path / "bb.pth")
    with pytest.raises(BNNASError, match=r"holds weights for arch spos-imagenet .* configured arch is spos-imagenet"):
        load_backbone_state(tmp_path / "bb.pth", load_arch("spos"), se=False)
    with pytest.raises(BNNASError, match="space spos-imagenet vs fairnas-imagenet"):
        load_backbone_state(tmp_path / "bb.pth", load_arch("abs-fairnas"), se=False)
    # the retrained subnet checkpoint itself is accepted (head dropped)
    state = load_backbone_state(tmp_path / "sub.pth", load_arch("bnnas-spos"), se=False)
    assert state and not any(k.startswith("head.") for k in state)
