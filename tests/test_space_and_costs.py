"""Search spaces, arch files and the FLOPs/params lookup tables (checked against real counts)."""

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bnnas import Arch, BNNASError, get_space, load_arch, save_arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import MBCONV_OPS, PRESETS
from bnnas.core.subnet import SubNet
from bnnas.core.supernet import Supernet


def test_spos_imagenet_space_matches_the_papers_layout():
    s = get_space("spos-imagenet")
    assert len(s.layers) == 21
    assert [l.size_in for l in s.layers] == [112] + [56] * 4 + [28] * 4 + [14] * 8 + [7] * 4
    widths = [(l.cin, l.cout) for l in s.layers]
    assert widths[0] == (24, 32) and widths[4] == (32, 56) and widths[8] == (56, 112)
    assert widths[12] == (112, 128) and widths[16] == (128, 256) and widths[20] == (256, 432)
    assert [i for i, l in enumerate(s.layers) if l.choices == ("id",)] == [1, 5, 6, 9]
    assert sum(l.searchable for l in s.layers) == 17
    assert all(l.choices == MBCONV_OPS for l in s.layers if l.searchable)
    assert s.feature_layers[1:] == (7, 15, 20)  # strides 8, 16, 32 end at L7, L15, L20


def test_fairnas_space_matches_the_papers_layout():
    s = get_space("fairnas-imagenet")
    assert len(s.layers) == 19 and all(l.choices == MBCONV_OPS for l in s.layers)
    assert (s.stem_channels, s.first_channels, s.head_channels) == (32, 16, 1280)
    assert s.layers[-1].cout == 320


def test_unknown_space_is_a_clear_error():
    with pytest.raises(BNNASError, match="unknown search space 'nope'.*spos-imagenet"):
        get_space("nope")


def _count(model: torch.nn.Module, size: int, num_classes: int, head: int, fc_flops: str = "(2in-1)out") -> float:
    """Independent count: torch's FLOP counter (2 per MAC) for convs, plus the space's FC convention."""
    with FlopCounterMode(display=False) as fc:
        model.eval()(torch.randn(1, 3, size, size))
    counts = {str(k): v for k, v in fc.get_flop_counts()["Global"].items()}
    conv_macs = counts["aten.convolution"] / 2
    return conv_macs + (head if fc_flops == "in*out" else 2 * head - 1) * num_classes


@pytest.mark.parametrize("space_name", ["spos-imagenet", "fairnas-imagenet", "spos-small", "spos-small-res", "unbiased-small",
                                        "nas-bench-macro", "nas-bench-macro-half", "nas-bench-macro-res-half"])
@pytest.mark.slow
@pytest.mark.parametrize("se", [False, True])
def test_lookup_table_equals_real_count(space_name, se):
    space = get_space(space_name)
    ft, pt = flops_table(space, se=se), params_table(space, se=se)
    rng = np.random.default_rng(hash(space_name) % 1000)
    n = 2 if space.input_size > 64 else 4
    for _ in range(n):
        arch = Arch(space, tuple(int(rng.integers(len(l.choices))) for l in space.layers))
        model = SubNet(arch, se=se)
        assert ft.of(arch.choices) == _count(model, space.input_size, space.num_classes, space.head_channels,
                                             space.fc_flops)
        assert pt.of(arch.choices) == sum(p.numel() for p in model.parameters())


def test_published_presets_flops():
    # The BN-NAS and SPOS archs sit at the paper's ~470 MFLOPs; FairNAS's near its 325 M.
    assert flops_table(get_space("spos-imagenet")).of(Arch.preset("bnnas-spos").choices) / 1e6 == pytest.approx(473.5, abs=0.1)
    assert flops_table(get_space("spos-imagenet")).of(Arch.preset("spos").choices) / 1e6 == pytest.approx(468.8, abs=0.1)
    assert 300 < flops_table(get_space("fairnas-imagenet")).of(Arch.preset("abs-fairnas").choices) / 1e6 < 330


def test_arch_file_roundtrip(tmp_path):
    arch = Arch.preset("bnnas-spos")
    path = save_arch(arch, tmp_path / "arch.json", flops_m=473.5)
    d = json.loads(path.read_text())
    assert d["paper_indices"] == PRESETS["bnnas-spos"][1]
    assert d["layers"][0] == {"op": "k5e6", "kernel": 5, "expansion": 6, "cin": 24, "cout": 32, "stride": 2}
    back = load_arch(path)
    assert back == arch and back.meta["flops_m"] == 473.5


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"ops": ["k3e3"]}', "missing field"),
    ('{"space": "spos-imagenet", "ops": ["k3e3"]}', "has 1 layers but space 'spos-imagenet' has 21"),
    ('{"space": "spos-imagenet", "ops": ' + json.dumps(["k3e3"] * 21) + "}", "layer 1 .* has no op 'k3e3'"),
    ('{"space": "spos-small", "ops": ' + json.dumps(["k9e3"] * 12) + "}", "unknown op 'k9e3'"),
    ('{"space": "mars", "ops": []}', "unknown search space"),
])
def test_malformed_arch_files(tmp_path, content, message):
    p = tmp_path / "arch.json"
    p.write_text(content)
    with pytest.raises(BNNASError, match=message):
        load_arch(p)


def test_missing_arch_file(tmp_path):
    with pytest.raises(BNNASError, match="arch file not found"):
        load_arch(tmp_path / "nope.json")


def test_supernet_path_equals_subnet_with_inherited_weights():
    from bnnas.core.subnet import subnet_state_from_supernet

    space = get_space("spos-small")
    torch.manual_seed(0)
    sup = Supernet(space).eval()
    arch = Arch(space, tuple(len(l.choices) - 1 for l in space.layers))
    sub = SubNet(arch, dropout=0.0).eval()
    sub.load_state_dict(subnet_state_from_supernet(sup.state_dict(), arch))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(sub(x), sup(x, arch.choices))
