"""The built-in data sets, the small-data recipe's pieces, and the checks that say how far to trust a search run."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bnnas.data import datasets as ds
from bnnas.trust.verdicts.evidence import bn_free_mask, check_learning, layer_taus, seed_agreement
from bnnas.core.space import get_space
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_trainer import init_branch_gammas

from conftest import write_fake_fashion

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A Fashion-MNIST install in the Debian package's layout, 40 train / 20 test images, and a private cache."""
    src = write_fake_fashion(tmp_path / "fashion-mnist", 40, 20)
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", src)
    monkeypatch.setenv("BNNAS_CACHE", str(tmp_path / "cache"))
    return src


def test_fashion_mnist_is_found_and_loaded_through_torchvision(fake_fashion):
    assert ds.fashion_mnist_available() and ds.default_builtin() == "fashion-mnist"
    data = ds.build_classification_data(None, 32)
    assert data.name == "fashion-mnist" and data.num_classes == 10
    assert len(data.train) == 40 and len(data.val) == 20
    x, y = data.train[0]
    assert x.shape == (3, 32, 32) and 0 <= int(y) < 10
    # 28 -> 32 is a 2 px zero pad: the original pixels are untouched
    raw = ds.load_fashion_mnist_split("train", 32)
    border = torch.cat([raw.images[:, 0, :2].flatten(), raw.images[:, 0, :, -2:].flatten()])
    assert torch.allclose(border, torch.full_like(border, raw.fill))
    src = np.frombuffer(gzip.open(fake_fashion / "train-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(40, 28, 28)
    assert torch.allclose(raw.images[:, 0, 2:-2, 2:-2] * 0.353 + 0.286, torch.from_numpy(src / 255.0).float(), atol=1e-5)


def test_holdout_comes_from_the_training_split_never_the_test_split(fake_fashion):
    data = ds.build_classification_data("fashion-mnist", 32, holdout=10, seed=3)
    assert len(data.heldout) == 10 and len(data.train) == 30 and len(data.val) == 20
    assert set(data.heldout.indices).isdisjoint(data.train.indices)
    assert data.heldout.dataset.images.shape[0] == 40  # indices into the 40 training images, not the 20 test ones


def test_search_and_ranking_study_hold_out_the_same_images(fake_fashion):
    from bnnas.trust.studies.study_data import study_data

    search = ds.build_classification_data("fashion-mnist", 32, holdout=10, seed=3)
    study = study_data(ds.build_classification_data("fashion-mnist", 32, seed=3), 10, seed=3)
    assert search.heldout.indices == study.heldout.indices == ds.holdout_split(40, 10, 3)[1]
    assert search.train.indices == study.train.indices


def test_digits_fallback_when_fashion_mnist_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert ds.default_builtin() == "digits"
    assert ds.build_classification_data(None, 32).name == "digits"
    with pytest.raises(ds.BNNASError, match="apt-get install dataset-fashion-mnist"):
        ds.build_classification_data("fashion-mnist", 32)


def test_limit_train_keeps_the_same_images_for_every_seed():
    a = ds.build_classification_data("digits", 32, seed=0, limit_train=100)
    b = ds.build_classification_data("digits", 32, seed=0, limit_train=100)
    assert len(a.train) == 100 and a.train.indices == b.train.indices
    with pytest.raises(ds.BNNASError, match="limit-train"):
        ds.build_classification_data("digits", 32, limit_train=0)


@pytest.mark.slow
def test_default_demo_names_the_digits_fallback(tmp_path):
    # conftest points BNNAS_FASHION_MNIST at a missing dir, as on a machine without the package
    out = subprocess.run([sys.executable, str(ROOT / "tools/search.py"), "--epochs", "1", "--limit-train", "256",
                          "--search", "exact", "--work-dir", str(tmp_path), "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Fashion-MNIST is not installed" in out.stdout and "using the small built-in digits" in out.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["data"] == "digits"


def test_small_data_space_fixes_the_transition_layers():
    space = get_space("spos-small-res")
    for layer in space.layers:
        if layer.stride != 1 or layer.cin != layer.cout:
            assert layer.choices == ("k3e6",)
        else:
            assert len(layer.choices) == 7 and "id" in layer.choices


def test_gamma_init_closes_only_residual_branches():
    torch.manual_seed(0)
    net = Supernet(get_space("spos-small"))
    init_branch_gammas(net, 0.0)
    for li, _ci, bn in net.indicator_bns():
        layer = net.space.layers[li]
        if bn is None:
            continue
        residual = layer.stride == 1 and layer.cin == layer.cout
        assert torch.all(bn.weight == (0.0 if residual else 1.0)), li


def test_untrained_supernet_warns_and_a_trained_one_does_not():
    space = get_space("spos-small-res")
    free = bn_free_mask(space)
    rng = np.random.default_rng(0)
    valid = np.array([[i < len(l.choices) for i in range(space.max_choices)] for l in space.layers])
    spread = np.where(free, 0.0, rng.uniform(0.0, 0.3, free.shape))
    spread[:, 0], spread[:, 1] = 0.0, 0.2  # every layer's BN ops span at least 0.2
    spread = np.where(valid, spread, np.nan)
    flat = np.where(valid, np.where(free, 0.0, 1.0), np.nan)
    untrained = check_learning([{"train_acc": 0.11}], 10, flat, free)
    assert untrained.learned is False and "did not learn" in untrained.warning
    trained = check_learning([{"train_acc": 0.45}], 10, spread, free)
    assert trained.learned is True and trained.warning is None
    assert trained.spread_layers == 7 and trained.searchable_layers == 7
    flat_but_learned = check_learning([{"train_acc": 0.45}], 10, flat, free)
    assert flat_but_learned.spread_layers == 0 and "barely differ" in flat_but_learned.warning


@pytest.mark.slow
def test_cli_warns_when_the_supernet_stays_at_chance(tmp_path):
    # the paper's recipe on 128 digits for one epoch cannot learn: the report must say so
    out = subprocess.run([sys.executable, str(ROOT / "tools/search.py"), "--data", "digits", "--recipe", "paper",
                          "--epochs", "1", "--limit-train", "128", "--search", "exact", "--work-dir", str(tmp_path),
                          "--quiet"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "did not learn" in out.stdout
    assert "did not learn" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["evidence"]["learned"] is False


def test_seed_agreement_on_hand_made_tables():
    free = np.array([[False, False, False, True], [False, False, False, True]])
    a = np.array([[0.3, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.0]])
    same = seed_agreement([a, a.copy()], [[0, 2], [0, 2]], free)
    assert same.mean_tau == pytest.approx(1.0) and same.arch_agreement == 1.0 and same.stable
    b = np.array([[0.1, 0.2, 0.3, 0.0], [0.3, 0.2, 0.1, 0.0]])  # BN ops reversed, identity still last
    rev = seed_agreement([a, b], [[0, 2], [2, 0]], free)
    assert rev.mean_tau_bn_ops == pytest.approx(-1.0) and rev.arch_agreement == 0.0 and not rev.stable
    assert rev.mean_tau == pytest.approx(np.mean(layer_taus(a, b)))
    assert "seed-dependent" in rev.verdict


def _fake_run(path: Path, choices, scores) -> Path:
    from bnnas.core.arch import Arch, save_arch

    space = get_space("spos-small-res")
    path.mkdir()
    save_arch(Arch(space, tuple(choices)), path / "arch.json")
    rows = [[None if np.isnan(v) else float(v) for v in row] for row in scores]
    (path / "op_scores.json").write_text(json.dumps({"space": space.name, "epochs": [{"epoch": 1, "scores": rows}]}))
    return path


def test_stability_tool_on_run_dirs(tmp_path, capsys):
    from bnnas.cli.stability import main

    space = get_space("spos-small-res")
    rng = np.random.default_rng(1)
    valid = np.array([[i < len(l.choices) for i in range(space.max_choices)] for l in space.layers])
    table = np.where(valid, rng.uniform(0.1, 0.3, valid.shape), np.nan)
    table[:, 6] = np.where(valid[:, 6], 0.0, np.nan)  # identity
    choices = [0] * len(space.layers)
    a = _fake_run(tmp_path / "a", choices, table)
    b = _fake_run(tmp_path / "b", choices, table)
    assert main([str(a), str(b), "--out", str(tmp_path / "s.json")]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["stable"] and doc["mean_tau"] == pytest.approx(1.0) and doc["run_dirs"] == [str(a), str(b)]
    assert "seeds agree" in capsys.readouterr().out
    assert main([str(a)]) == 2 and "at least two" in capsys.readouterr().err
    assert main([str(a), str(tmp_path)]) == 2 and "not a finished search run" in capsys.readouterr().err
