"""scripts/gpu_check.sh, the prepared check of a CUDA machine: its steps run here on the CPU at toy sizes (--smoke),
and without a GPU the real check stops after the device step, with a non-zero exit status and the JSON written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["device", "rows-1-2", "row-4", "retrain", "torchrun", "detector", "row-5"]


def gpu_check(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHON=sys.executable))


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_step(tmp_path):
    for module in ("mmdet", "effdet", "mim"):
        pytest.importorskip(module)
    out = tmp_path / "out"
    p = gpu_check("--smoke", str(out), timeout=900)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    doc = json.loads((out / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in doc["steps"]}
    assert list(steps) == STEPS and doc["ok"] and all(s["ok"] for s in steps.values())
    assert doc["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0] and "pinned_differences" in doc
    for name in STEPS:  # the closing table: one row per step
        assert any(line.startswith(f"{name} ") and "| ok " in line for line in p.stdout.splitlines()), name
    assert steps["retrain"]["result"].startswith("10 steps")
    assert steps["torchrun"]["result"].startswith("2 process(es), backend gloo: 2 steps")
    assert steps["detector"]["result"].startswith("4 iterations") and "bbox mAP" in steps["detector"]["result"]
    for row in (1, 2, 4, 5):
        assert f"row {row}: " in steps["rows-1-2" if row < 3 else f"row-{row}"]["result"]
    assert (out / "logs" / "detector.log").is_file() and (out / "retrain" / "last.pth").is_file()


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the real check would run")
def test_gpu_check_without_a_gpu_fails_after_the_device_step(tmp_path):
    out = tmp_path / "out"
    p = gpu_check(str(out), timeout=300)
    assert p.returncode == 2 and p.stderr.strip().splitlines()[-1].startswith("error: 7 step(s) failed"), p.stderr
    doc = json.loads((out / "gpu_check.json").read_text())
    assert not doc["ok"] and [s["name"] for s in doc["steps"]] == STEPS
    assert "no CUDA device" in (out / "logs" / "device.log").read_text()
    assert all(s["result"] == "not run: the device check failed" for s in doc["steps"][1:])
