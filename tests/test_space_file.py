"""Spaces as files: ``bnnas spaces --dump`` round trips, a dumped file searches/retrains/exports like its built-in
name, a hand-written 3-stage space searches, arch.json carries a file space, and bad files are one line each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import bnnas.core.space as space_mod
from bnnas.cli.main import main as bnnas
from bnnas.core.arch import load_arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import get_space, list_spaces
from bnnas.core.space_file import dump_space, space_text
from bnnas.outputs.checkpoint import load_checkpoint
from conftest import one_line_error

ROOT = Path(__file__).resolve().parents[1]
THREE_STAGE = ROOT / "configs" / "spaces" / "three_stage.yaml"
TINY_SEARCH = ["--data", "digits", "--epochs", "1", "--limit-train", "256", "--search", "exact", "--quiet",
               "--threads", "1"]
TINY_RETRAIN = ["--data", "digits", "--epochs", "1", "--limit-train", "256", "--batch-size", "64", "--threads", "1",
                "--quiet"]


def _same_costs(a, b, draws: int = 50) -> None:
    """Same FLOPs and params for every arch (per-op tables equal, checked also on random archs)."""
    for table in (flops_table, params_table):
        ta, tb = table(a), table(b)
        np.testing.assert_array_equal(ta.per_op, tb.per_op)
        assert ta.base == tb.base
        rng = np.random.default_rng(0)
        for _ in range(draws):
            ch = [int(rng.integers(len(l.choices))) for l in a.layers]
            assert ta.of(ch) == tb.of(ch)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_builtin_space_dumps_and_loads_back(tmp_path, suffix, capsys):
    for name in list_spaces():
        out = tmp_path / f"{name}{suffix}"
        assert bnnas(["spaces", "--dump", name, "--out", str(out)]) == 0
        assert get_space(str(out)) == get_space(name)  # same name and contents: the built-in space itself
        doc = dump_space(name)
        doc["name"] = f"{name}-copy{suffix[1:]}"  # under another name it is a file space with the same costs
        copy = tmp_path / f"copy-{name}{suffix}"
        copy.write_text(space_text(doc, suffix == ".json"))
        loaded = get_space(str(copy), 7)
        assert loaded.file_sha256 and loaded.layers == get_space(name).layers and loaded.num_classes == 7
        _same_costs(loaded, get_space(name, 7))
    capsys.readouterr()
    assert bnnas(["spaces"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [l.split()[0] for l in listing] == list_spaces()


def test_dump_refuses_to_overwrite_and_unknown_names(tmp_path, capsys):
    out = tmp_path / "s.yaml"
    out.write_text("keep")
    assert bnnas(["spaces", "--dump", "spos-small", "--out", str(out)]) == 2
    one_line_error(2, capsys.readouterr().err, "exists", "--force")
    assert out.read_text() == "keep"
    assert bnnas(["spaces", "--dump", "resnet", "--out", str(tmp_path / "r.yaml")]) == 2
    one_line_error(2, capsys.readouterr().err, "unknown search space 'resnet'")
    assert not (tmp_path / "r.yaml").exists()


GOOD = THREE_STAGE.read_text()
# (file text, the field or problem the one error line must name)
BAD = {
    "unknown_field": (GOOD + "stagez: []\n", "unknown field 'stagez'"),
    "missing_stages": ("\n".join(l for l in GOOD.splitlines() if not l.startswith(("stages:", "  - {"))),
                       "missing field 'stages'"),
    "bad_stride": (GOOD.replace("{channels: 32, layers: 3, stride: 2}", "{channels: 32, layers: 3, stride: two}"),
                   "field 'stages[1].stride'"),
    "stem_keys": (GOOD.replace("stem: {channels: 16, stride: 2}", "stem: {channels: 16}"), "field 'stem'"),
    "unknown_op": (GOOD.replace("choices: [k3e3,", "choices: [k9e3,"), "field 'choices[0]'"),
    "activation": (GOOD + "activation: gelu\n", "field 'activation'"),
    "identity_at_stride": (GOOD + "fixed_identity: [2]\n", "field 'fixed_identity'"),
    "layer_out_of_range": (GOOD.replace("  6: [k3e6, k5e6]", "  99: [k3e6]"), "field 'layer_ops': layer 99"),
    "builtin_name": (GOOD.replace("name: three-stage", "name: spos-small"), "field 'name'"),
    "input_size": (GOOD.replace("input_size: 32", "input_size: 4"), "field 'input_size'"),
    "not_yaml": (GOOD.replace("stem: {channels: 16, stride: 2}", "stem: {channels: 16, stride: 2"),
                 "not valid YAML"),
    "not_a_mapping": ("- just\n- a list\n", "expected a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_space_file_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    text, needle = BAD[case]
    bad = tmp_path / f"{case}.yaml"
    bad.write_text(text)
    work = tmp_path / "run"
    rc = bnnas(["search", "--space", str(bad), "--work-dir", str(work), *TINY_SEARCH])
    one_line_error(rc, capsys.readouterr().err, str(bad), needle)
    assert not work.exists()


def test_malformed_json_space_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"input_size": 32,')
    rc = bnnas(["search", "--space", str(bad), "--work-dir", str(tmp_path / "run"), *TINY_SEARCH])
    one_line_error(rc, capsys.readouterr().err, "not valid JSON")


@pytest.mark.slow
def test_hand_written_three_stage_space_runs_a_search(tmp_path, capsys):
    work = tmp_path / "run"
    assert bnnas(["search", "--space", str(THREE_STAGE), "--work-dir", str(work), *TINY_SEARCH]) == 0
    d = json.loads((work / "arch.json").read_text())
    assert d["space"] == "three-stage" and len(d["ops"]) == 7 and d["flops_m"] <= 6.0
    assert d["space_file"]["space"]["stages"][2] == {"channels": 64, "layers": 2, "stride": 2}
    assert load_checkpoint(work / "supernet.pth", kind="supernet")["space_file"] == d["space_file"]


def _search(tmp_path: Path, space: str, tag: str) -> dict:
    work = tmp_path / tag
    assert bnnas(["search", "--space", space, "--work-dir", str(work), *TINY_SEARCH]) == 0
    return json.loads((work / "arch.json").read_text())


@pytest.mark.slow
def test_dumped_space_searches_retrains_and_exports_like_its_builtin_name(tmp_path, monkeypatch):
    dumped = tmp_path / "res.yaml"
    assert bnnas(["spaces", "--dump", "spos-small-res", "--out", str(dumped)]) == 0
    renamed = tmp_path / "my-res.yaml"
    renamed.write_text(dumped.read_text().replace("name: spos-small-res", "name: my-res"))
    builtin, same, mine = (_search(tmp_path, s, t) for s, t in (("spos-small-res", "builtin"),
                                                                (str(dumped), "dumped"), (str(renamed), "renamed")))
    keys = ("ops", "flops_m", "params_m", "bn_score", "num_classes")
    assert [builtin[k] for k in keys] == [same[k] for k in keys] == [mine[k] for k in keys]
    assert same["space"] == "spos-small-res" and "space_file" not in same
    assert mine["space"] == "my-res" and mine["space_file"]["sha256"]
    renamed.unlink()
    monkeypatch.setattr(space_mod, "_FILE_TABLES", {})  # as in a fresh process: only arch.json knows the space
    states = {}
    for tag in ("builtin", "renamed"):
        arch = tmp_path / tag / "arch.json"
        assert bnnas(["retrain", "--arch", str(arch), "--work-dir", str(tmp_path / f"re-{tag}"), *TINY_RETRAIN]) == 0
        out = tmp_path / f"{tag}.pth"
        assert bnnas(["export", "--arch", str(arch), "--checkpoint", str(tmp_path / f"re-{tag}" / "best.pth"),
                      "--out", str(out)]) == 0
        states[tag] = load_checkpoint(out)
    for k, v in states["builtin"]["state_dict"].items():
        torch.testing.assert_close(states["renamed"]["state_dict"][k], v, rtol=0, atol=0)
    metrics = [json.loads((tmp_path / f"re-{t}" / "metrics.json").read_text())["summary"] for t in states]
    assert metrics[0]["best_top1"] == metrics[1]["best_top1"] and metrics[0]["flops_m"] == metrics[1]["flops_m"]
    monkeypatch.setattr(space_mod, "_FILE_TABLES", {})
    assert load_arch(states["renamed"]["arch"]).space.name == "my-res"  # the backbone file rebuilds it too
    pytest.importorskip("mmdet")
    from mmdet_plugin.backbone import BNNASBackbone

    monkeypatch.setattr(space_mod, "_FILE_TABLES", {})
    bb = BNNASBackbone(arch=str(tmp_path / "renamed" / "arch.json"), init_cfg=dict(
        type="Pretrained", checkpoint=str(tmp_path / "renamed.pth")))
    bb.init_weights()
    assert bb.arch.space.name == "my-res" and len(bb(torch.zeros(1, 3, 32, 32))) == 3
