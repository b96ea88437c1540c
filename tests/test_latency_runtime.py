"""Latency in a chosen runtime: per-op tables timed in onnxruntime (cached under a key naming runtime, device,
threads and input size), a search under an onnxruntime budget, and ``bnnas latency-check`` at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bnnas.cli.main import main as bnnas
from bnnas.core.latency import TimingSettings, latency_key, measure_latency_table
from bnnas.core.space import get_space

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
FAST = TimingSettings(block_seconds=0.0003, min_passes=3, max_passes=4, max_seconds=1.0, threads=1)
TINY = """name: tiny-runtime
input_size: 16
stem: {channels: 8, stride: 2}
stages: [{channels: 8, layers: 2, stride: 1}, {channels: 16, layers: 1, stride: 2}]
head_channels: 16
num_classes: 10
choices: [k3e3, k5e3, id]
transition_op: k3e3
default_budget: 0.5
"""


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_cache_key_names_runtime_device_threads_and_size(tiny):
    space = get_space(str(tiny))
    key = latency_key(space, "onnxruntime", __import__("torch").device("cpu"), 1, 1)
    assert key.startswith("tiny-runtime#") and key.endswith("|onnxruntime|cpu|t1|16px|b1")
    assert latency_key(get_space("spos-small"), "torch", __import__("torch").device("cpu"), 2, 1) == \
        "spos-small|torch|cpu|t2|32px|b1"


def test_onnxruntime_table_is_measured_and_cached_apart_from_torch(tiny, tmp_path, monkeypatch):
    import bnnas.core.latency as lat

    space = get_space(str(tiny))
    cache = tmp_path / "t.json"
    ort_table = measure_latency_table(space, "cpu", cache=cache, timing=FAST, runtime="onnxruntime")
    assert np.isfinite(ort_table.per_op).sum() == 7 and (ort_table.per_op[np.isfinite(ort_table.per_op)] > 0).all()
    assert "|onnxruntime|" in json.loads(cache.read_text())["key"]
    calls = []
    monkeypatch.setattr(lat, "_measure", lambda units, timing, threads, runtime="torch": calls.append(runtime) or
                        np.full((len(units), 3), 1e-4))
    again = measure_latency_table(space, "cpu", cache=cache, timing=FAST, runtime="onnxruntime")
    np.testing.assert_array_equal(again.per_op, ort_table.per_op)  # from the cache
    measure_latency_table(space, "cpu", cache=cache, timing=FAST, runtime="torch")
    assert calls == ["torch"]  # another runtime is another key: measured again


@pytest.mark.slow
def test_search_under_an_onnxruntime_latency_budget(tiny, tmp_path):
    work = tmp_path / "run"
    assert bnnas(["search", "--space", str(tiny), "--data", "digits", "--epochs", "1", "--limit-train", "128",
                  "--search", "exact", "--latency", "100", "--latency-runtime", "onnxruntime", "--threads", "1",
                  "--work-dir", str(work), "--quiet"]) == 0
    assert json.loads((work / "summary.json").read_text())["budget_unit"] == "ms"
    assert "|onnxruntime|" in json.loads((work / "latency_table-onnxruntime.json").read_text())["key"]


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_latency_check_reports_errors_and_offset(tiny, tmp_path, capsys, runtime):
    work = tmp_path / "check"
    assert bnnas(["latency-check", "--space", str(tiny), "--runtime", runtime, "--archs", "6", "--max-seconds", "1",
                  "--budget-ms", "1000", "--work-dir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "Kendall tau" in out and "p90" in out
    doc = json.loads((work / f"latency_check-{runtime}.json").read_text())
    assert doc["archs"] == 6 and len(doc["per_arch"]) == 6 and doc["runtime"] == runtime
    assert 0 <= doc["errors"]["median"] <= doc["errors"]["p90"] and -1 <= doc["errors"]["kendall_tau"] <= 1
    check = doc["budget_check"]  # a budget every arch fits: the slowest predicted arch, measured
    slowest_drawn = max(p["predicted_ms"] for p in doc["per_arch"]) + (doc["offset_ms"] or 0.0)
    assert check["predicted_ms"] >= slowest_drawn - 1e-9 and check["measured_ms"] > 0
    if doc["biased"]:  # the offset is stored with the table, which then predicts with it
        table = json.loads((work / ("latency_table.json" if runtime == "torch" else
                                    "latency_table-onnxruntime.json")).read_text())
        assert table["offset"] == pytest.approx(doc["offset_ms"] / 1e3)
        assert doc["errors_with_offset"]["median"] >= 0
