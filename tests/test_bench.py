"""Smoke test of bench/run.py: rows 3 and 6 run in quick mode and print parseable results; row 6's twelve
COCO numbers agree between pycocotools and faster-coco-eval. No timing is asserted (the machine may be busy)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_rows_3_and_6(tmp_path):
    pytest.importorskip("faster_coco_eval")
    pytest.importorskip("pycocotools")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--rows", "3,6", "--json",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    assert re.search(r"^\| 3 \|.*\| EA [\d.]+ ms, exact [\d.]+ ms", text, re.M), text
    m = re.search(r"^\| 6 \|.*\| ([\d.]+)x faster; 12 numbers (identical|DIFFER)", text, re.M)
    assert m and float(m.group(1)) > 0, text
    doc = json.loads(out.read_text())
    rows = {r["row"]: r for r in doc["rows"]}
    coco = rows[6]["data"]
    assert coco["identical"] and len(coco["stats_pycocotools"]) == 12
    assert coco["stats_pycocotools"] == coco["stats_faster"]
    assert 0.0 < coco["stats_pycocotools"][0] < 1.0  # AP of the synthetic predictions: neither trivial nor perfect
    search = rows[3]["data"]
    assert all(n == 1000 for n in search["evaluated"])  # the paper's 50 x 20 subnets per EA run
    assert all(g >= -1e-9 for g in search["gap"])  # the exact solver is never beaten by the EA
