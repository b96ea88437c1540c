"""tools/retrain.py and bnnas.training.retrainer: accuracy on digits, SE and its cost tables, exact resume, checkpoints, errors.

Runs single-threaded (a busy 2-core CPU runs tiny convs ~10x faster on one thread than on two) at 16px with the
cheapest spos-small arch, so the whole file takes well under a minute on an idle machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset
from torch.utils.flop_counter import FlopCounterMode

from bnnas.core.arch import Arch, arch_from_dict, load_arch, save_arch
from bnnas.outputs.checkpoint import atomic_save, load_checkpoint, load_state_strict
from bnnas.data import ClassificationData, build_classification_data
from bnnas.core.flops import flops_table, params_table
from bnnas.cli.retrain import main
from bnnas.core.flops import subnet_cost
from bnnas.training.retrainer import BEST_NAME, LAST_NAME, RetrainConfig, Retrainer
from bnnas.core.space import get_space, parse_op
from bnnas.core.subnet import SubNet

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "retrain.py"
SIZE = 16
CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cheapest_arch() -> Arch:
    """spos-small with k3e3 wherever a conv is needed and identity wherever allowed (3.1 MFLOPs at 32px)."""
    space = get_space("spos-small")
    return Arch(space, tuple(l.choices.index("id") if "id" in l.choices else 0 for l in space.layers))


def mixed_arch(seed: int = 0) -> Arch:
    """A random spos-small arch that uses every MBConv op at least once."""
    space = get_space("spos-small")
    rng = np.random.default_rng(seed)
    while True:
        choices = tuple(int(rng.integers(len(l.choices))) for l in space.layers)
        arch = Arch(space, choices)
        if {"k3e3", "k3e6", "k5e3", "k5e6", "k7e3", "k7e6"} <= set(arch.ops):
            return arch


@pytest.fixture(scope="module")
def digits():
    return build_classification_data(None, SIZE)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """The cheapest arch retrained for 2 epochs on the full digits training split (1437 images)."""
    work = tmp_path_factory.mktemp("retrain_digits")
    arch = cheapest_arch()
    save_arch(arch, work / "arch.json")
    cfg = RetrainConfig(epochs=2, batch_size=32, lr=0.2, input_size=SIZE)
    trainer = Retrainer(arch, digits, cfg, work, CPU, show_progress=False)
    result = trainer.fit()
    trainer.write_metrics()
    return work, trainer, result


@pytest.mark.slow
def test_retrain_beats_chance_on_digits(trained):
    work, trainer, result = trained
    assert len(result.history) == 2
    # 10 classes: chance is 10 %, and 60 % (six times chance) asks only that the arch learned, not how well on this
    # CPU (two epochs of the cheapest arch reached ~90 % where this was written)
    assert result.best.top1 > 0.6, [h.top1 for h in result.history]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert all(h.top5 >= h.top1 for h in result.history)
    metrics = json.loads((work / "metrics.json").read_text())
    assert [e["top1"] for e in metrics["epochs"]] == [h.top1 for h in result.history]
    assert metrics["summary"]["best_top1"] == result.best.top1
    assert (work / "training_curve.png").stat().st_size > 1000


@pytest.mark.slow
def test_best_checkpoint_loads_into_subnet(trained, digits):
    work, trainer, result = trained
    ck = load_checkpoint(work / BEST_NAME, kind="subnet")
    assert ck["epoch"] == result.best.epoch and ck["top1"] == result.best.top1 and ck["se"] is False
    arch = arch_from_dict(ck["arch"])
    assert arch.ops == cheapest_arch().ops
    net = SubNet(arch, se=ck["se"])
    load_state_strict(net, ck["state_dict"], "best.pth")  # raises on any missing/unexpected key
    assert net.state_dict().keys() == ck["state_dict"].keys()
    # the stored weights are the ones that scored the stored top-1
    net.eval()
    with torch.no_grad():
        x = torch.stack([digits.val[i][0] for i in range(len(digits.val))])
        y = torch.stack([digits.val[i][1] for i in range(len(digits.val))])
        correct = int((net(x).argmax(1) == y).sum())
    assert correct == round(ck["top1"] * len(y))
    # last.pth holds the same weights at the end when the last epoch was the best one, plus training state
    last = load_checkpoint(work / LAST_NAME, kind="subnet")
    assert last["epoch"] == 2 and last["finished"] and "optimizer" in last


@pytest.mark.slow
def test_best_checkpoint_exports_as_backbone(trained, tmp_path):
    from bnnas.export import export_backbone

    work, _, _ = trained
    meta = export_backbone(work / BEST_NAME, tmp_path / "backbone.pth")
    assert meta["arch"]["ops"] == cheapest_arch().ops and meta["se"] is False


def _real_cost(net: SubNet, size: int) -> tuple[int, int]:
    """(MACs as the paper counts them, parameter count) measured on the module itself."""
    net.eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(torch.randn(1, 3, size, size))
    counts = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    assert set(counts) <= {"aten.convolution", "aten.addmm"}, counts  # nothing else is counted
    nc = net.head.fc.out_features
    # torch counts 2 FLOPs per multiply-accumulate; the paper counts convs in MACs and the FC as (2*C_in - 1)*C_out
    macs = counts["aten.convolution"] // 2 + counts["aten.addmm"] - nc
    return macs, sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("se", [False, True])
def test_se_modules_and_cost_tables_match_real_counts(se):
    from timm.models._efficientnet_blocks import SqueezeExcite

    arch = mixed_arch()
    net = SubNet(arch, se=se)
    n_se = sum(isinstance(m, SqueezeExcite) for m in net.modules())
    n_mbconv = sum(parse_op(op)[0] == "mbconv" for op in arch.ops)
    assert n_se == (n_mbconv if se else 0)
    for size in (32, 64):  # the space's own size and another training resolution
        macs, params = _real_cost(net, size)
        flops_m, params_m = subnet_cost(arch, se, size)
        assert flops_m == macs and params_m == params
    assert flops_table(arch.space, se).of(arch.choices) == subnet_cost(arch, se)[0]
    assert params_table(arch.space, se).of(arch.choices) == sum(p.numel() for p in net.parameters())


def test_se_on_the_imagenet_preset():
    arch = load_arch("bnnas-spos")
    plain, with_se = SubNet(arch), SubNet(arch, se=True)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(with_se) > n(plain)
    assert params_table(arch.space, True).of(arch.choices) == n(with_se)
    macs, _ = _real_cost(with_se, 224)
    assert flops_table(arch.space, True).of(arch.choices) == macs


def _small_data(digits: ClassificationData, n_train: int = 96, n_val: int = 32) -> ClassificationData:
    return ClassificationData("digits", Subset(digits.train, range(n_train)), Subset(digits.val, range(n_val)), 10,
                              SIZE)


@pytest.mark.slow
@pytest.mark.parametrize("stop_at,workers", [(6, 0), (9, 1)], ids=["epoch-boundary", "mid-epoch-worker"])
def test_resume_reproduces_uninterrupted_run(tmp_path, digits, stop_at, workers):
    """2 epochs in one go == stopped after ``stop_at`` steps (6 per epoch), then resumed in a new trainer.

    With a loader worker the main process's RNG is not reseeded by the data pipeline, so this also checks that the
    model's own randomness (dropout) does not depend on the history of the process.
    """
    data = _small_data(digits)
    arch = mixed_arch(1)
    cfg = dict(epochs=2, batch_size=16, lr=0.2, input_size=SIZE, ema=True, dropout=0.2, workers=workers)

    full = Retrainer(arch, data, RetrainConfig(**cfg), tmp_path / "full", CPU, show_progress=False)
    assert full.steps_per_epoch == 6
    full.fit()

    first = Retrainer(arch, data, RetrainConfig(**cfg), tmp_path / "split", CPU, show_progress=False)
    first.fit(stop_at_step=stop_at)
    assert first.global_step == stop_at
    del first
    torch.manual_seed(12345)  # a new process would start from another RNG state
    second = Retrainer(arch, data, RetrainConfig(**cfg), tmp_path / "split", CPU, show_progress=False)
    assert second.global_step == 0
    second.fit(resume_from=tmp_path / "split" / LAST_NAME)
    assert second.global_step == full.global_step == 12

    def same(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # bitwise: weights, BN statistics, EMA weights, momentum buffers
    assert same(full.model.state_dict(), second.model.state_dict())
    assert same(full.ema.module.state_dict(), second.ema.module.state_dict())
    mom = lambda t: [s["momentum_buffer"] for s in t.optimizer.state_dict()["state"].values()]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(mom(full), mom(second)))
    strip = lambda h: {k: v for k, v in h.__dict__.items() if k != "seconds"}  # noqa: E731
    assert [strip(h) for h in full.history] == [strip(h) for h in second.history]
    best_a = load_checkpoint(tmp_path / "full" / BEST_NAME)
    best_b = load_checkpoint(tmp_path / "split" / BEST_NAME)
    assert best_a["epoch"] == best_b["epoch"] and same(best_a["state_dict"], best_b["state_dict"])
    # and the run is not trivially "equal" because nothing changed
    assert not same(full.model.state_dict(), SubNet(arch).state_dict())


# -- command line ----------------------------------------------------------------------------------------------------
def _main(capsys, *args: str) -> tuple[int, str, str]:
    rc = main([*args, "--quiet", "--threads", "1"])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc: int, err: str, *needles: str) -> None:
    assert rc == 2
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.slow
def test_tool_end_to_end(tmp_path):
    """The real script in a fresh interpreter: trains, prints the summary line, writes every promised file."""
    save_arch(cheapest_arch(), tmp_path / "arch.json")
    work = tmp_path / "run"
    r = subprocess.run([sys.executable, str(TOOL), "--arch", str(tmp_path / "arch.json"), "--work-dir", str(work),
                        "--epochs", "1", "--input-size", str(SIZE), "--batch-size", "96", "--threads", "1",
                        "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = [l for l in r.stdout.splitlines() if l.startswith("retrain done:")]
    assert len(summary) == 1 and "best top-1" in summary[0] and "params 0." in summary[0] and "MFLOPs" in summary[0]
    for name in (LAST_NAME, BEST_NAME, "metrics.json", "training_curve.png", "log.txt"):
        assert (work / name).is_file(), name
    ck = load_checkpoint(work / BEST_NAME, kind="subnet")
    assert ck["arch"]["ops"] == cheapest_arch().ops and ck["epoch"] == 1 and 0 <= ck["top1"] <= 1


def _fit_cli_run(capsys, tmp_path) -> tuple[Path, Path, list[str]]:
    save_arch(cheapest_arch(), tmp_path / "arch.json")
    work = tmp_path / "run"
    args = ["--arch", str(tmp_path / "arch.json"), "--work-dir", str(work), "--epochs", "1",
            "--input-size", str(SIZE), "--batch-size", "128"]
    rc, out, err = _main(capsys, *args)
    assert rc == 0, err
    return tmp_path / "arch.json", work, args


@pytest.mark.slow
def test_auto_resume_and_mismatched_checkpoints(capsys, tmp_path):
    arch_path, work, args = _fit_cli_run(capsys, tmp_path)
    before = load_checkpoint(work / LAST_NAME)
    # same settings: resumed automatically; the run is already finished, so nothing changes
    rc, out, err = _main(capsys, *args)
    assert rc == 0, err
    after = load_checkpoint(work / LAST_NAME)
    assert after["global_step"] == before["global_step"]
    assert all(torch.equal(after["state_dict"][k], v) for k, v in before["state_dict"].items())
    # another recipe
    rc, _, err = _main(capsys, *args, "--lr", "0.05")
    _one_line_error(rc, err, "other settings", "lr")
    # another architecture
    other = mixed_arch()
    save_arch(other, tmp_path / "other.json")
    rc, _, err = _main(capsys, *[a if a != str(arch_path) else str(tmp_path / "other.json") for a in args])
    _one_line_error(rc, err, "another architecture")
    # with SE where the checkpoint has none
    rc, _, err = _main(capsys, *args, "--se")
    _one_line_error(rc, err, "without --se")
    # --no-resume refuses to touch an existing run
    rc, _, err = _main(capsys, *args, "--no-resume")
    _one_line_error(rc, err, "--no-resume")
    # best.pth has no training state to resume from
    rc, _, err = _main(capsys, *args, "--resume", str(work / BEST_NAME))
    _one_line_error(rc, err, "without training state")


def test_num_classes_mismatch_on_resume(capsys, tmp_path):
    """A run on a 3-class image folder cannot be resumed on the 10-class digits."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in ("a", "b", "c"):
            d = tmp_path / "folder" / split / c
            d.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(d / f"{i}.png")
    save_arch(cheapest_arch(), tmp_path / "arch.json")
    common = ["--arch", str(tmp_path / "arch.json"), "--work-dir", str(tmp_path / "run"), "--epochs", "1",
              "--input-size", str(SIZE), "--batch-size", "4", "--workers", "0"]
    rc, out, err = _main(capsys, *common, "--data", str(tmp_path / "folder"))
    assert rc == 0, err
    ck = load_checkpoint(tmp_path / "run" / BEST_NAME, kind="subnet")
    assert ck["num_classes"] == 3 and ck["arch"]["num_classes"] == 3 and ck["state_dict"]["head.fc.weight"].shape[0] == 3
    rc, _, err = _main(capsys, *common)
    _one_line_error(rc, err, "3 classes", "10")


def test_bad_inputs(capsys, tmp_path):
    base = ["--work-dir", str(tmp_path / "run"), "--epochs", "1", "--input-size", str(SIZE)]
    rc, _, err = _main(capsys, "--arch", str(tmp_path / "missing.json"), *base)
    _one_line_error(rc, err, "arch file not found")
    (tmp_path / "broken.json").write_text("{ not json")
    rc, _, err = _main(capsys, "--arch", str(tmp_path / "broken.json"), *base)
    _one_line_error(rc, err, "not valid JSON")
    (tmp_path / "noops.json").write_text(json.dumps({"space": "spos-small"}))
    rc, _, err = _main(capsys, "--arch", str(tmp_path / "noops.json"), *base)
    _one_line_error(rc, err, "missing field", "ops")
    (tmp_path / "badop.json").write_text(json.dumps({"space": "spos-small", "ops": ["k9e9"] * 12}))
    rc, _, err = _main(capsys, "--arch", str(tmp_path / "badop.json"), *base)
    _one_line_error(rc, err, "unknown op")
    (tmp_path / "short.json").write_text(json.dumps({"space": "spos-small", "ops": ["k3e3"] * 5}))
    rc, _, err = _main(capsys, "--arch", str(tmp_path / "short.json"), *base)
    _one_line_error(rc, err, "5 layers", "12")
    save_arch(cheapest_arch(), tmp_path / "arch.json")
    good = ["--arch", str(tmp_path / "arch.json"), *base]
    rc, _, err = _main(capsys, *good, "--epochs", "0")
    _one_line_error(rc, err, "--epochs")
    rc, _, err = _main(capsys, *good, "--dropout", "1.5")
    _one_line_error(rc, err, "--dropout")
    rc, _, err = _main(capsys, *good, "--batch-size", "5000")
    _one_line_error(rc, err, "larger than")
    rc, _, err = _main(capsys, *good, "--resume", str(tmp_path / "nope.pth"))
    _one_line_error(rc, err, "not found")
    rc, _, err = _main(capsys, *good, "--resume")
    _one_line_error(rc, err, "no last.pth")
    atomic_save({"kind": "supernet", "state_dict": {}}, tmp_path / "supernet.pth")
    rc, _, err = _main(capsys, *good, "--resume", str(tmp_path / "supernet.pth"))
    _one_line_error(rc, err, "supernet", "subnet")
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / LAST_NAME).write_bytes(b"truncated")
    rc, _, err = _main(capsys, *good)
    _one_line_error(rc, err, "cannot read checkpoint")
    assert not (tmp_path / "run" / BEST_NAME).exists()  # nothing trained on bad input
