"""tools/search.py end to end on the built-in digits and on an ImageNet-style folder, and its bad-input errors."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bnnas import load_arch
from bnnas.core.flops import flops_table
from bnnas.cli.search import main
from bnnas.training.supernet_trainer import load_supernet
from bnnas.indicators.bn import bn_score_table

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("demo")
    # the README's demo command, shortened to 2 epochs and run as a user would (a subprocess)
    out = subprocess.run([sys.executable, str(ROOT / "tools/search.py"), "--epochs", "2", "--work-dir", str(wd),
                          "--quiet"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return wd, out.stdout


@pytest.mark.slow
def test_demo_writes_everything_and_arch_is_consistent(demo_run):
    wd, stdout = demo_run
    for f in ("arch.json", "supernet.pth", "op_scores.json", "report.md", "summary.json", "log.txt",
              "op_scores.png", "early_bird.png", "search.png", "training.png"):
        assert (wd / f).exists(), f
    arch = load_arch(wd / "arch.json")
    d = json.loads((wd / "arch.json").read_text())
    ft = flops_table(arch.space)
    assert d["flops_m"] == pytest.approx(ft.of(arch.choices) / 1e6, abs=1e-3)
    assert d["flops_m"] <= 10.0  # the space's default budget
    supernet, _ = load_supernet(wd / "supernet.pth")
    table = bn_score_table(supernet)
    assert d["bn_score"] == pytest.approx(table.of(arch.choices), abs=1e-5)
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["search"]["exact"]["score"] >= summary["search"]["evolution"]["score"] - 1e-9
    assert summary["search"]["exact"]["score"] >= summary["search"]["random"]["score"] - 1e-9
    assert len(json.loads((wd / "op_scores.json").read_text())["epochs"]) == 2
    assert "exact" in stdout and "arch:" in stdout  # the closing summary table


@pytest.mark.slow
def test_rerun_resumes_finished_run_without_retraining(demo_run, tmp_path):
    src, _ = demo_run
    wd = tmp_path / "run"
    shutil.copytree(src, wd)  # a copy: the module's other tests read the demo run as it was written
    before = {p.name: p.read_bytes() for p in wd.iterdir() if p.is_file()}
    assert main(["--epochs", "2", "--work-dir", str(wd), "--quiet", "--search", "exact", "--flops", "8"]) == 0
    after = {p.name: p.read_bytes() for p in wd.iterdir() if p.is_file()}
    assert after["supernet.pth"] == before["supernet.pth"]  # nothing retrained
    assert after["op_scores.json"] == before["op_scores.json"]
    # the first search's result is kept beside the new one; arch.json/summary.json/report.md are the latest
    for name in ("arch-10MFLOPs-exact.json", "summary-10MFLOPs-exact.json", "report-10MFLOPs-exact.md"):
        assert after[name] == before[name], name
    assert before["arch.json"] == before["arch-10MFLOPs-exact.json"]
    assert after["arch.json"] == after["arch-8MFLOPs-exact.json"] != before["arch.json"]
    assert json.loads(after["arch.json"])["flops_m"] <= 8
    assert json.loads(after["summary.json"])["budget"] == 8 and after["report.md"] == after["report-8MFLOPs-exact.md"]


@pytest.mark.slow
def test_reuse_supernet_and_search_by_latency(demo_run, tmp_path):
    wd, _ = demo_run
    assert main(["--supernet", str(wd / "supernet.pth"), "--work-dir", str(tmp_path), "--quiet",
                 "--latency", "1000", "--search", "exact,evolution"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["budget_unit"] == "ms" and s["epochs_trained"] == 2
    assert (tmp_path / "latency_table.json").exists()


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_impossible_budget_fails_before_training(tmp_path, capsys):
    err = _err(capsys, ["--flops", "1", "--work-dir", str(tmp_path), "--quiet"])
    assert "no subnet fits a budget of 1.00 MFLOPs" in err and "smallest subnet" in err
    assert not (tmp_path / "supernet.pth").exists()


def test_unknown_space(tmp_path, capsys):
    assert "unknown search space 'resnet'" in _err(capsys, ["--space", "resnet", "--work-dir", str(tmp_path)])


@pytest.mark.slow
def test_mismatched_supernet_file(demo_run, tmp_path, capsys):
    wd, _ = demo_run
    err = _err(capsys, ["--supernet", str(wd / "supernet.pth"), "--space", "unbiased-small",
                        "--work-dir", str(tmp_path), "--quiet"])
    assert "is a 'spos-small-res' supernet, not 'unbiased-small'" in err
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    assert "cannot read checkpoint" in _err(capsys, ["--supernet", str(junk), "--work-dir", str(tmp_path)])


def test_missing_and_empty_data_folders(tmp_path, capsys):
    assert "dataset folder not found" in _err(capsys, ["--data", str(tmp_path / "nope"), "--work-dir", str(tmp_path)])
    (tmp_path / "empty" / "train").mkdir(parents=True)
    assert "no class folders" in _err(capsys, ["--data", str(tmp_path / "empty"), "--work-dir", str(tmp_path)])
    (tmp_path / "empty" / "train" / "cat").mkdir()
    assert "no images" in _err(capsys, ["--data", str(tmp_path / "empty"), "--work-dir", str(tmp_path)])


def _image_folder(root, per_class=6, corrupt=False):
    from sklearn.datasets import load_digits

    d = load_digits()
    for c in range(3):
        (root / "train" / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(d.images[d.target == c][:per_class]):
            Image.fromarray((img * 15).astype(np.uint8)).resize((40, 40)).convert("RGB").save(
                root / "train" / f"class{c}" / f"{i}.JPEG")
    if corrupt:
        (root / "train" / "class1" / "broken.JPEG").write_bytes(b"\xff\xd8 this is not a jpeg")
    return root


def test_imagenet_folder_layout_end_to_end(tmp_path):
    data = _image_folder(tmp_path / "imagenet")
    wd = tmp_path / "run"
    assert main(["--data", str(data), "--space", "spos-small", "--epochs", "1", "--batch-size", "6",
                 "--workers", "0", "--work-dir", str(wd), "--quiet", "--search", "exact"]) == 0
    arch = json.loads((wd / "arch.json").read_text())
    assert arch["num_classes"] == 3 and arch["found_by"]["data"] == "imagenet"


def test_corrupt_image_is_named(tmp_path, capsys):
    data = _image_folder(tmp_path / "imagenet", per_class=2, corrupt=True)
    err = _err(capsys, ["--data", str(data), "--space", "spos-small", "--epochs", "1", "--batch-size", "7",
                        "--workers", "0", "--work-dir", str(tmp_path / "run"), "--quiet"])
    assert "cannot read image" in err and "broken.JPEG" in err


@pytest.mark.slow
def test_spos_accuracy_indicator_search(demo_run, tmp_path):
    """The baseline indicator: BN recalibrated on training batches, accuracy on held-out digits."""
    wd, _ = demo_run
    assert main(["--supernet", str(wd / "supernet.pth"), "--work-dir", str(tmp_path), "--quiet",
                 "--indicator", "spos-acc", "--holdout", "200", "--search", "evolution,exact", "--population", "4",
                 "--iterations", "2"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert set(s["search"]) == {"evolution"}  # exact needs an additive indicator and is skipped
    assert 0.0 <= s["search"]["evolution"]["score"] <= 1.0 and s["search"]["evolution"]["evaluated"] == 8
