"""The structural rules (depth, depth-largest) as indicators, with answers known by construction, and the committed
per-key score records of the full NAS-Bench-Macro study: they cover every key and reproduce their own statistics."""

import json

import numpy as np
import pytest

from bnnas.benchmarks import load_benchmark
from bnnas.core.arch import Arch
from bnnas.core.space import get_space
from bnnas.core.supernet import Supernet
from bnnas.indicators.registry import BASELINES, STRUCTURAL, build_indicator
from bnnas.trust.studies.benchmark.benchmark_stats import ranking_stats

from conftest import ROOT

RECORDS = ROOT / "docs" / "results" / "nas-bench-macro" / "full_space.json"


@pytest.fixture(scope="module")
def table():
    return load_benchmark("nas-bench-macro")


@pytest.fixture(scope="module")
def nbm_supernet():
    return Supernet(get_space("nas-bench-macro"))


@pytest.mark.parametrize("key, depth, largest", [
    ("00000000", 0, 0),  # the three transitions' 1x1-conv identities are identities, not the layer's largest op
    ("11111111", 8, 0),
    ("22222222", 8, 8),
    ("21000000", 2, 1),
    ("00000002", 1, 1),
])
def test_depth_and_depth_largest_of_hand_picked_keys(nbm_supernet, key, depth, largest):
    choices = np.array([Arch.from_key(nbm_supernet.space, key).choices])
    assert build_indicator("depth", nbm_supernet).batch(choices)[0] == depth
    assert build_indicator("depth-largest", nbm_supernet).batch(choices)[0] == 9 * depth + largest


def test_the_tie_break_never_outweighs_a_layer(nbm_supernet):
    """Every arch one layer deeper scores higher, whatever the k5e6 counts: depth-largest refines depth's order."""
    space = nbm_supernet.space
    pop = np.array(np.meshgrid(*[range(len(l.choices)) for l in space.layers], indexing="ij")).reshape(8, -1).T
    d = build_indicator("depth", nbm_supernet).batch(pop)
    dl = build_indicator("depth-largest", nbm_supernet).batch(pop)
    assert np.array_equal(dl // 9, d)
    assert len(np.unique(dl)) > len(np.unique(d))


def test_a_table_made_of_the_rule_is_ranked_perfectly_by_it_and_not_by_depth(table, nbm_supernet):
    """Accuracy = 9 x depth + k5e6 count over the 6561 keys: depth-largest is that function (tau 1 everywhere),
    depth ties every arch of one depth (tau-b below 1)."""
    acc = 9 * (table.choices > 0).sum(1) + (table.choices == 2).sum(1)
    rule = ranking_stats(build_indicator("depth-largest", nbm_supernet).batch(table.choices), acc, table.flops)
    depth = ranking_stats(build_indicator("depth", nbm_supernet).batch(table.choices), acc, table.flops)
    assert rule["kendall_tau"] == pytest.approx(1.0) and rule["decile_tau"] == pytest.approx(1.0)
    assert depth["decile_tau"] < 0.95


def test_the_structural_rules_are_baselines():
    assert set(STRUCTURAL) <= set(BASELINES)


def test_committed_records_cover_every_key_and_reproduce_the_structural_rules(table, nbm_supernet):
    records = json.loads(RECORDS.read_text())
    assert {"flops", "depth", "depth-largest"} <= {r["indicator"] for r in records}
    assert any(r["indicator"].startswith("bn:") for r in records)
    for r in records:
        assert set(r) >= {"indicator", "supernet_seed", "scores"}
        assert set(r["scores"]) == set(table.keys), r["indicator"]
        assert np.all(np.isfinite(list(r["scores"].values()))), r["indicator"]
    by_name = {r["indicator"]: r for r in records}
    for name in STRUCTURAL:
        committed = np.array([by_name[name]["scores"][k] for k in table.keys])
        assert np.allclose(committed, build_indicator(name, nbm_supernet).batch(table.choices))
