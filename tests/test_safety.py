"""Nothing lost, nothing silently wrong: work-dir locks, kill -9 and resume in real processes, overwrite guards,
parse-time number checks, one-line errors, data fingerprints on resume, crash leftovers, umask, a binding latency
budget.

The subprocess runs use a 48-image, 3-class folder at batch 4 on one thread, so a 2-epoch search takes seconds.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bnnas.core.arch import Arch, load_arch, save_arch
from bnnas.outputs.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from bnnas.errors import BNNASError
from bnnas.cli.search import main as search_main
from bnnas.cli.retrain import main as retrain_main
from bnnas.core.space import get_space
from bnnas.cli.trust import main as trust_main
from bnnas.outputs.workdir import LOCK_NAME, WorkDirLock, claim_work_dir, remove_stale_temp_files
from conftest import one_line_error as _one_line_error

ROOT = Path(__file__).resolve().parents[1]
SEARCH, RETRAIN = ROOT / "tools" / "search.py", ROOT / "tools" / "retrain.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _folder(root: Path, per_class: int = 16, val: bool = False) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    for split in ("train", "val") if val else ("train",):
        for c in range(3):
            (root / split / f"class{c}").mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(d.images[d.target == c][:per_class]):
                Image.fromarray((img * 15).astype(np.uint8)).resize((32, 32)).convert("RGB").save(
                    root / split / f"class{c}" / f"{i}.png")
    return root


def _search_argv(data: Path, wd: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--space", "spos-small", "--epochs", "2", "--batch-size", "4", "--workers", "0",
            "--work-dir", str(wd), "--quiet", "--search", "exact", *extra]


def _search_proc(data: Path, wd: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SEARCH), *_search_argv(data, wd, *extra)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(pred, proc: subprocess.Popen | None = None, timeout: float = 240.0) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("data") / "folder")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data) -> Path:
    """An uninterrupted 2-epoch search, as a user runs it."""
    wd = tmp_path_factory.mktemp("reference")
    r = subprocess.run([sys.executable, str(SEARCH), *_search_argv(data, wd)], env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return wd


def _assert_same_search(wd: Path, ref: Path) -> None:
    a, b = load_checkpoint(wd / "supernet.pth"), load_checkpoint(ref / "supernet.pth")
    assert a["finished"] and a["epoch"] == b["epoch"] == 2
    assert _same_state(a["state_dict"], b["state_dict"]), "weights differ from the uninterrupted run"
    assert _strip_seconds(a["history"]) == _strip_seconds(b["history"])
    assert json.loads((wd / "arch.json").read_text())["ops"] == json.loads((ref / "arch.json").read_text())["ops"]
    scores = lambda p: [e["scores"] for e in json.loads((p / "op_scores.json").read_text())["epochs"]]  # noqa: E731
    assert scores(wd) == scores(ref)


# -- real processes ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill9_busy_dir_stale_lock_and_resume_bit_identical(data, reference, tmp_path):
    """kill -9 mid-training; a second run meanwhile is refused naming the holder; the next run takes the dead run's
    lock over, removes its temp files, resumes and ends bit-identical to the uninterrupted run."""
    wd = tmp_path / "run"
    first = _search_proc(data, wd, "--ckpt-every", "1")
    _wait_for(lambda: (wd / "supernet.pth").exists(), first)
    os.kill(first.pid, signal.SIGSTOP)  # holds the lock, makes no progress: the second run surely meets it
    try:
        second = subprocess.run([sys.executable, str(SEARCH), *_search_argv(data, wd)], env=ENV, capture_output=True,
                                text=True, timeout=300)
        _one_line_error(second.returncode, second.stderr, "in use by another run", f"pid {first.pid}",
                        socket.gethostname())
        stale_tmp = wd / ".supernet.pth.dead0000.tmp"
        stale_tmp.write_bytes(b"half a checkpoint")
        os.utime(stale_tmp, (time.time() - 60, time.time() - 60))
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        first.stdout.close()
        first.stderr.close()
    assert json.loads((wd / LOCK_NAME).read_text())["pid"] == first.pid  # the dead run's record is left behind
    ckpt = load_checkpoint(wd / "supernet.pth")
    assert not ckpt["finished"] and ckpt["global_step"] < 24  # really killed during training
    third = subprocess.run([sys.executable, str(SEARCH), *_search_argv(data, wd)], env=ENV, capture_output=True,
                           text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-2000:]
    log = (wd / "log.txt").read_text()
    assert f"pid {first.pid}" in log and "is gone; taking over its lock" in log
    assert "resumed from" in log and "left by an interrupted write" in log
    assert not stale_tmp.exists() and not list(wd.glob(".*.tmp"))
    assert not (wd / LOCK_NAME).exists()  # released at exit
    _assert_same_search(wd, reference)


@pytest.mark.slow
def test_second_run_is_refused_and_first_finishes_intact(data, reference, tmp_path):
    wd = tmp_path / "run"
    first = _search_proc(data, wd)
    _wait_for(lambda: (wd / LOCK_NAME).exists() and (wd / LOCK_NAME).stat().st_size > 0, first)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run([sys.executable, str(SEARCH), *_search_argv(data, wd, "--flops", "8")], env=ENV,
                                capture_output=True, text=True, timeout=300)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _one_line_error(second.returncode, second.stderr, "in use by another run", f"pid {first.pid}")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert not list(wd.glob("arch-8MFLOPs*"))  # nothing of the refused run
    _assert_same_search(wd, reference)


@pytest.mark.slow
def test_retrain_kill9_then_resume_bit_identical(data, tmp_path):
    space = get_space("spos-small")
    save_arch(Arch(space, tuple(l.choices.index("id") if "id" in l.choices else 0 for l in space.layers)),
              tmp_path / "arch.json")
    argv = lambda wd: [sys.executable, str(RETRAIN), "--arch", str(tmp_path / "arch.json"), "--data", str(data),  # noqa
                       "--input-size", "16", "--epochs", "2", "--batch-size", "4", "--workers", "0", "--threads", "1",
                       "--work-dir", str(wd), "--quiet", "--ckpt-every", "1"]
    ref = subprocess.run(argv(tmp_path / "ref"), env=ENV, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-2000:]
    wd = tmp_path / "run"
    p = subprocess.Popen(argv(wd), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (wd / "last.pth").exists(), p)
    p.kill()
    p.wait()
    p.stderr.close()
    assert not load_checkpoint(wd / "last.pth")["finished"]
    r = subprocess.run(argv(wd), env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("last.pth", "best.pth"):
        a, b = load_checkpoint(wd / name), load_checkpoint(tmp_path / "ref" / name)
        assert a["epoch"] == b["epoch"] and _same_state(a["state_dict"], b["state_dict"]), name
    assert json.loads((wd / "metrics.json").read_text())["summary"]["best_top1"] == \
        json.loads((tmp_path / "ref" / "metrics.json").read_text())["summary"]["best_top1"]


# -- results beside each other, resume keys ----------------------------------------------------------------------------
@pytest.mark.slow
def test_rerun_with_other_budget_keeps_earlier_result(reference, data, tmp_path):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    first_arch = (wd / "arch-10MFLOPs-exact.json").read_bytes()
    supernet = (wd / "supernet.pth").read_bytes()
    assert (wd / "arch.json").read_bytes() == first_arch
    args = _search_argv(data, wd, "--flops", "8")
    assert search_main(args) == 0
    assert (wd / "supernet.pth").read_bytes() == supernet  # nothing retrained
    assert (wd / "arch-10MFLOPs-exact.json").read_bytes() == first_arch  # earlier result kept
    new = json.loads((wd / "arch-8MFLOPs-exact.json").read_text())
    assert new["flops_m"] <= 8 and (wd / "arch.json").read_bytes() == (wd / "arch-8MFLOPs-exact.json").read_bytes()
    assert json.loads((wd / "summary.json").read_text())["result"] == "8MFLOPs-exact"
    assert (wd / "summary-10MFLOPs-exact.json").exists() and (wd / "report-10MFLOPs-exact.md").exists()
    log = (wd / "log.txt").read_text()
    assert "arch-10MFLOPs-exact.json" in log and "copies of it" in log


@pytest.mark.slow
def test_resume_refuses_other_data_and_world_size(reference, data, tmp_path, capsys):
    wd = tmp_path / "run"
    shutil.copytree(reference, wd)
    other = _folder(tmp_path / "other" / "folder", per_class=12)  # same name and classes, fewer images
    assert search_main(_search_argv(other, wd)) == 2
    _one_line_error(2, capsys.readouterr().err, "trained on other data", "root", "training images 48 -> 36")
    ck = load_checkpoint(wd / "supernet.pth")
    atomic_save({**ck, "world_size": 2}, wd / "supernet.pth")
    assert search_main(_search_argv(data, wd)) == 2
    _one_line_error(2, capsys.readouterr().err, "world size: 2 -> 1")


def test_retrain_resume_refuses_other_data_root(tmp_path, capsys):
    space = get_space("spos-small")
    save_arch(Arch(space, tuple(l.choices.index("id") if "id" in l.choices else 0 for l in space.layers)),
              tmp_path / "arch.json")
    a, b = _folder(tmp_path / "a" / "folder", 4, val=True), _folder(tmp_path / "b" / "folder", 4, val=True)
    common = ["--arch", str(tmp_path / "arch.json"), "--input-size", "16", "--epochs", "1", "--batch-size", "4",
              "--threads", "1", "--workers", "0", "--work-dir", str(tmp_path / "run"), "--quiet"]
    assert retrain_main([*common, "--data", str(a)]) == 0
    capsys.readouterr()
    assert retrain_main([*common, "--data", str(b)]) == 2
    _one_line_error(2, capsys.readouterr().err, "other settings", f"root {a}/train -> {b}/train")


@pytest.mark.slow
def test_latency_budget_that_binds_and_corrupt_cache(reference, data, tmp_path, capsys):
    from bnnas.indicators.bn import bn_score_table
    from bnnas.core.latency import measure_latency_table
    from bnnas.training.supernet_trainer import load_supernet

    logging.getLogger("bnnas").handlers.clear()  # earlier in-process runs' handlers write to closed streams
    supernet, _ = load_supernet(reference / "supernet.pth")
    wd = tmp_path / "run"
    wd.mkdir()
    (wd / "latency_table.json").write_text("{ this is not json")  # a corrupt cache is measured again
    table = measure_latency_table(supernet.space, "cpu", cache=wd / "latency_table.json")
    json.loads((wd / "latency_table.json").read_text())
    scores = bn_score_table(supernet).scores
    free = tuple(int(np.nanargmax(row[: len(l.choices)])) for row, l in zip(scores, supernet.space.layers))
    cheapest = table.base + sum(float(np.min(r[: len(l.choices)])) for r, l in zip(table.per_op, supernet.space.layers))
    assert table.of(free) > cheapest
    budget_ms = 1e3 * (cheapest + table.of(free)) / 2  # between the cheapest subnet and the best-scoring one
    assert search_main(["--supernet", str(reference / "supernet.pth"), "--data", str(data), "--space", "spos-small",
                        "--work-dir", str(wd), "--quiet", "--latency", f"{budget_ms:.6f}", "--search", "exact"]) == 0
    s = json.loads((wd / "summary.json").read_text())
    chosen = load_arch(wd / "arch.json").choices
    assert s["budget_unit"] == "ms" and s["search"]["exact"]["cost"] <= budget_ms + 1e-9
    assert chosen != free and table.of(chosen) * 1e3 <= budget_ms + 1e-9  # the budget bound the choice
    cached = json.loads((wd / "latency_table.json").read_text())  # this run's own format and key, wrong shape
    (wd / "latency_table.json").write_text(json.dumps({**cached, "per_op": [[1, 2]], "spread": [[0, 0]]}))
    assert search_main(["--supernet", str(reference / "supernet.pth"), "--data", str(data), "--space", "spos-small",
                        "--work-dir", str(wd), "--quiet", "--latency", "1000", "--search", "exact"]) == 0
    assert "unreadable" in (wd / "log.txt").read_text()


# -- parse-time numbers, one-line errors -------------------------------------------------------------------------------
def _tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


BAD_NUMBERS = [
    ("search", ["--epochs", "0"], "--epochs"), ("search", ["--epochs", "-1"], "--epochs"),
    ("search", ["--flops", "0"], "--flops"), ("search", ["--flops", "nan"], "--flops"),
    ("search", ["--latency", "-2"], "--latency"), ("search", ["--batch-size", "0"], "--batch-size"),
    ("search", ["--batch-size", "-4"], "--batch-size"), ("search", ["--population", "0"], "--population"),
    ("search", ["--iterations", "0"], "--iterations"), ("search", ["--samples", "0"], "--samples"),
    ("search", ["--seed", "-1"], "--seed"), ("search", ["--device", "foo"], "--device"),
    ("search", ["--holdout", "-1"], "--holdout"), ("search", ["--lr", "0"], "--lr"),
    ("retrain", ["--epochs", "0"], "--epochs"), ("retrain", ["--batch-size", "-1"], "--batch-size"),
    ("retrain", ["--seed", "-3"], "--seed"), ("retrain", ["--device", "foo"], "--device"),
    ("retrain", ["--input-size", "4"], "--input-size"),
    ("rank", ["--proxy-epochs", "0"], "--proxy-epochs"), ("rank", ["--k", "1"], "--k"),
    ("rank", ["--bn-epochs", "0"], "--bn-epochs"), ("rank", ["--supernet-batch", "0"], "--supernet-batch"),
    ("early-bird", ["--epochs", "0"], "--epochs"), ("early-bird", ["--proxy-epochs", "0"], "--proxy-epochs"),
    ("bias", ["--epochs", "0"], "--epochs"), ("bias", ["--budgets", "5,0"], "--budgets"),
    ("bias", ["--batch-size", "0"], "--batch-size"),
    ("make_coco_demo", ["--num-train", "0"], "--num-train"), ("make_coco_demo", ["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("tool,argv,flag", BAD_NUMBERS, ids=[f"{t}{' '.join(a)}" for t, a, _ in BAD_NUMBERS])
def test_invalid_numbers_fail_at_parse_time(tool, argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    if tool == "search":
        rc = search_main([*argv, "--work-dir", str(out)])
    elif tool == "retrain":
        rc = retrain_main(["--arch", "bnnas-spos", *argv, "--work-dir", str(out)])
    elif tool == "make_coco_demo":
        rc = _tool("make_coco_demo")([*argv, "--out", str(out)])
    else:
        rc = trust_main([tool, *argv, "--work-dir", str(out)])
    _one_line_error(rc, capsys.readouterr().err, f"argument {flag}")
    assert not out.exists()  # nothing created


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_is_one_line(tmp_path, capsys):
    assert search_main(["--device", "cuda", "--work-dir", str(tmp_path / "w")]) == 2
    _one_line_error(2, capsys.readouterr().err, "no CUDA device")


def test_unwritable_work_dir_and_empty_val(data, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file where a directory should be")
    assert search_main(_search_argv(data, blocker / "run")) == 2
    _one_line_error(2, capsys.readouterr().err, "cannot create work dir", "Not a directory")
    assert retrain_main(["--arch", "bnnas-spos", "--data", str(data), "--input-size", "16", "--epochs", "1",
                         "--batch-size", "4", "--workers", "0", "--work-dir", str(blocker / "run"), "--quiet"]) == 2
    _one_line_error(2, capsys.readouterr().err, "cannot create work dir")
    empty_val = tmp_path / "ev"
    shutil.copytree(data, empty_val)
    (empty_val / "val").mkdir()
    assert search_main(_search_argv(empty_val, tmp_path / "w2")) == 2
    _one_line_error(2, capsys.readouterr().err, "val has no class folders")
    assert not (tmp_path / "w2").exists()


def test_too_large_batch_fails_before_the_work_dir(data, tmp_path, capsys):
    assert search_main(_search_argv(data, tmp_path / "w", "--batch-size", "500")) == 2
    _one_line_error(2, capsys.readouterr().err, "--batch-size 500 is larger than the 48 training images")
    assert not (tmp_path / "w").exists()


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(BNNASError, match="dataset folder not found"):  # raised, not turned into a line
        search_main(["--data", str(tmp_path / "missing"), "--work-dir", str(tmp_path / "w"), "--debug"])


# -- export and make_coco_demo never overwrite what they did not make --------------------------------------------------
def test_export_refuses_its_input_and_existing_out(tmp_path, capsys):
    from bnnas.core.subnet import SubNet

    arch = load_arch("bnnas-spos")
    atomic_save({"kind": "subnet", "state_dict": SubNet(arch).state_dict(), "arch": arch.to_dict(), "se": False},
                tmp_path / "best.pth")
    export = _tool("export_backbone")
    ck = tmp_path / "best.pth"
    before = ck.read_bytes()
    for out in (ck, tmp_path / "sub" / ".." / "best.pth"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert export(["--checkpoint", str(ck), "--out", str(out), "--force"]) == 2
        _one_line_error(2, capsys.readouterr().err, "is the input")
    assert ck.read_bytes() == before
    assert export(["--checkpoint", str(ck), "--out", str(tmp_path / "bb.pth")]) == 0
    first = (tmp_path / "bb.pth").read_bytes()
    assert export(["--checkpoint", str(ck), "--out", str(tmp_path / "bb.pth")]) == 2
    _one_line_error(2, capsys.readouterr().err, "exists", "--force")
    assert (tmp_path / "bb.pth").read_bytes() == first
    assert export(["--checkpoint", str(ck), "--out", str(tmp_path / "bb.pth"), "--force"]) == 0
    (tmp_path / "file").write_text("x")
    assert export(["--checkpoint", str(ck), "--out", str(tmp_path / "file" / "bb.pth")]) == 2
    _one_line_error(2, capsys.readouterr().err, "Not a directory")


def test_make_coco_demo_refuses_foreign_dir_and_rewrites_its_own(tmp_path, capsys):
    make = _tool("make_coco_demo")
    small = ["--num-train", "2", "--num-val", "1", "--image-size", "64", "--min-object", "16", "--max-object", "32"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my own file")
    assert make(["--out", str(foreign), *small]) == 2
    _one_line_error(2, capsys.readouterr().err, "not empty", "not written by this tool")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    out = tmp_path / "demo"
    assert make(["--out", str(out), *small, "--num-train", "3"]) == 0
    assert len(list((out / "train2017").iterdir())) == 3
    (out / "README.user").write_text("kept")
    assert make(["--out", str(out), *small]) == 0  # its own dir: re-created, no stale 3rd image
    assert len(list((out / "train2017").iterdir())) == 2 and (out / "README.user").exists()


# -- the lock, temp files, umask, write order (in-process, fast) -------------------------------------------------------
def test_lock_is_exclusive_and_released(tmp_path):
    with WorkDirLock(tmp_path / "w", command="first") as lock:
        rec = json.loads((tmp_path / "w" / LOCK_NAME).read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname() and rec["command"] == "first"
        with pytest.raises(BNNASError, match=rf"in use by another run \(pid {os.getpid()} on host .*\(first\)"):
            WorkDirLock(tmp_path / "w").acquire()
        assert lock.took_over is None
    assert not (tmp_path / "w" / LOCK_NAME).exists()
    WorkDirLock(tmp_path / "w").acquire().release()  # free again


def test_stale_lock_is_taken_over_and_other_hosts_are_not(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    lock = claim_work_dir(tmp_path)
    assert lock.took_over["pid"] == dead.pid
    log = (tmp_path / "log.txt").read_text()
    assert f"pid {dead.pid}" in log and "taking over" in log
    lock.release()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "then"}))
    with pytest.raises(BNNASError, match="another host.*delete"):
        WorkDirLock(tmp_path).acquire()


def test_stale_temp_files_older_than_the_lock_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".venv").mkdir()
    old, new = tmp_path / ".supernet.pth.ab12cd34.tmp", tmp_path / ".arch.json.cd34ef56.tmp"
    old_sub = tmp_path / "sub" / ".last.pth.0a1b2c3d.tmp"
    keep = [tmp_path / "notes.tmp", tmp_path / ".other.tmp", tmp_path / ".venv" / ".x.pth.0a1b2c3d.tmp"]
    for p in (old, new, old_sub, *keep):
        p.write_bytes(b"x")
    for p in (old, old_sub, *keep):
        os.utime(p, (time.time() - 100, time.time() - 100))
    removed = remove_stale_temp_files(tmp_path, time.time() - 10)
    assert sorted(removed) == sorted([old, old_sub]) and new.exists() and all(p.exists() for p in keep)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_atomic_writes_honour_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        p = atomic_write_text(tmp_path / "arch.json", "{}")
        q = atomic_save({"x": 1}, tmp_path / "x.pth")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == stat.S_IMODE(q.stat().st_mode) == 0o666 & ~mask


def test_finished_checkpoint_is_written_last_and_resume_repairs_op_scores(tmp_path, digits, monkeypatch):
    from torch.utils.data import Subset

    import bnnas.training.supernet_trainer as ts
    import bnnas.training.trainer as tr  # the shared loop writes the checkpoints
    from bnnas.data import ClassificationData
    from bnnas.core.supernet import Supernet

    small = ClassificationData("digits", Subset(digits.train, range(8)), digits.val, 10, 32)
    make = lambda: ts.SupernetTrainer(  # noqa: E731
        Supernet(get_space("spos-small", 10)), small,
        ts.SupernetTrainConfig(epochs=2, batch_size=4, workers=0, lr=0.1), tmp_path, torch.device("cpu"),
        show_progress=False)
    writes = []
    real_save, real_text = tr.atomic_save, ts.atomic_write_text
    monkeypatch.setattr(tr, "atomic_save",
                        lambda obj, p: (writes.append(("ckpt", obj["finished"])), real_save(obj, p))[1])
    monkeypatch.setattr(ts, "atomic_write_text", lambda p, t: (writes.append((Path(p).name, None)), real_text(p, t))[1])
    make().fit()
    assert writes == [("op_scores.json", None), ("ckpt", False), ("op_scores.json", None), ("ckpt", True)]
    doc = json.loads((tmp_path / "op_scores.json").read_text())
    doc["epochs"] = doc["epochs"][:1]  # as a kill between two writes once left it
    (tmp_path / "op_scores.json").write_text(json.dumps(doc))
    rerun = make()
    rerun.fit(rerun.existing_checkpoint())  # a re-run of the finished run
    assert len(json.loads((tmp_path / "op_scores.json").read_text())["epochs"]) == 2
