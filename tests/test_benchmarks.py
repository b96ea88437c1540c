"""The NAS-Bench-Macro space and its published table: costs exact for every key, keys as archs, equivalent networks."""

import json

import numpy as np
import pytest
from torch import nn

from bnnas import Arch, BNNASError, get_space, load_arch, save_arch
from bnnas.benchmarks import canonical_key, load_benchmark
from bnnas.core.flops import flops_table, params_table
from bnnas.core.ops import ConvIdentity
from bnnas.core.subnet import SubNet
from bnnas.core.supernet import Supernet
from bnnas.indicators.bn import bn_score_table


@pytest.fixture(scope="module")
def table():
    return load_benchmark("nas-bench-macro")


def test_every_published_key_has_our_flops_and_params_exactly(table):
    assert len(table) == 6561 and table.accs.shape == (6561, 3)
    assert np.array_equal(flops_table(table.space).batch(table.choices), table.flops)
    assert np.array_equal(params_table(table.space).batch(table.choices), table.params)


def test_equivalent_keys_carry_their_canonical_networks_result(table):
    assert table.distinct.sum() == 3969
    row = {k: i for i, k in enumerate(table.keys)}
    for i, c in enumerate(table.canonical):
        assert np.array_equal(table.accs[i], table.accs[row[c]])
    space = table.space
    assert canonical_key(space, "10101001") == "10110010"  # stride-1 identities move to the end of their stage
    assert canonical_key(space, "00000000") == "00000000"  # a transition's (conv) identity stays in place


def test_space_is_the_published_network():
    space = get_space("nas-bench-macro")
    assert [(l.cin, l.cout, l.stride, l.size_in) for l in space.layers] == [
        (32, 64, 2, 32), (64, 64, 1, 16), (64, 128, 2, 16), (128, 128, 1, 8), (128, 128, 1, 8),
        (128, 256, 2, 8), (256, 256, 1, 4), (256, 256, 1, 4)]
    assert [l.choices[0] for l in space.layers] == ["id1x1", "id", "id1x1", "id", "id", "id1x1", "id", "id"]
    net = SubNet(Arch.from_key(space, "00000000"), dropout=0.0)
    assert len(net.stem) == 2  # conv + BN-act, no fixed first block
    assert isinstance(net.layers[0], ConvIdentity) and isinstance(net.layers[1], nn.Identity)
    acts = {type(m) for m in net.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))}
    assert acts == {nn.ReLU}


def test_the_indicator_reads_the_conv_identitys_bn_and_not_a_plain_identitys():
    table = bn_score_table(Supernet(get_space("nas-bench-macro")))
    assert np.isfinite(table.scores[0, 0]) and table.scores[0, 0] > 0  # id1x1 at a transition: its BN's mean |gamma|
    assert table.scores[1, 0] == 0  # a stride-1 identity has no BN


def test_arch_by_benchmark_key(tmp_path):
    arch = load_arch("nas-bench-macro:02012100")
    assert arch.ops == ["id1x1", "k5e6", "id1x1", "k3e3", "k5e6", "k3e3", "id", "id"]
    assert arch.benchmark_key == "02012100"
    path = save_arch(arch, tmp_path / "arch.json")
    assert json.loads(path.read_text())["benchmark_key"] == "02012100"
    assert load_arch(path).same_as(arch)
    assert Arch.preset("bnnas-spos").benchmark_key is None
    assert "benchmark_key" not in Arch.preset("bnnas-spos").to_dict()


@pytest.mark.parametrize("spec, message", [
    ("nas-bench-macro:0201210", "expected 8 digits"),
    ("nas-bench-macro:02012103", "layer 7 has no op 3"),
    ("spos-small:0000", "has no benchmark keys"),
])
def test_bad_benchmark_keys_are_one_line_errors(spec, message):
    with pytest.raises(BNNASError, match=message):
        load_arch(spec)


def test_unknown_benchmark_is_a_clear_error():
    with pytest.raises(BNNASError, match="unknown benchmark 'nope'.*nas-bench-macro"):
        load_benchmark("nope")


def test_a_space_that_fixes_the_transitions_holds_243_keys(table):
    res = table.restricted_to(get_space("nas-bench-macro-res"))
    assert len(res) == 243 and all(k[0] == k[2] == k[5] == "1" for k in res.keys)
    assert np.array_equal(flops_table(res.space).batch(res.choices), res.flops)


def test_a_search_in_a_benchmark_space_reports_the_published_accuracy(table):
    from bnnas.cli.search_report import _benchmark_line, _published

    arch = load_arch("nas-bench-macro:11111111")
    info = _published(arch, 55e6)
    row = table.row("11111111")
    assert info["acc"] == table.mean_acc[row] and info["archs"] == 6561
    band = (table.flops <= 55e6) & (table.flops >= 0.9 * 55e6)
    assert info["band_n"] == band.sum()
    assert info["percentile"] == pytest.approx(100 * np.mean(table.mean_acc[band] <= table.mean_acc[row]))
    assert "searched on proxy data: fashion-mnist" in _benchmark_line(info, "fashion-mnist")
    res = _published(Arch.from_key(get_space("nas-bench-macro-res"), "11111111"), 55e6)
    assert res["archs"] == 243 and res["band_n"] < info["band_n"]
