"""BN-only training, path sampling fairness, and exact resume."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Subset

from bnnas import BNNASError, get_space
from bnnas.data import ClassificationData
from bnnas.core.sampling import FairSampler, UniformSampler
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, configure_trainable


def _small_data(digits, n=256):
    return ClassificationData("digits", Subset(digits.train, range(n)), digits.val, 10, 32)


def _trainer(tmp_path, digits, **kw):
    torch.manual_seed(0)
    cfg = SupernetTrainConfig(**{"epochs": 2, "batch_size": 32, "workers": 0, "lr": 0.5, **kw})
    return SupernetTrainer(Supernet(get_space("spos-small", 10)), _small_data(digits), cfg, tmp_path,
                           torch.device("cpu"), show_progress=False)


def _bn_param_names(model, last_only):
    if last_only:
        ids = {id(p) for _, _, bn in model.indicator_bns() if bn is not None for p in (bn.weight, bn.bias)}
    else:
        ids = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in (m.weight, m.bias)}
    return {n for n, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("bn_params", ["last", "all"])
def test_bn_mode_changes_only_bn_parameters(tmp_path, digits, bn_params):
    t = _trainer(tmp_path, digits, epochs=1, bn_params=bn_params, sampler="fairnas")
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    allowed = _bn_param_names(t.model, bn_params == "last")
    x, y = next(iter(torch.utils.data.DataLoader(t.data.train, 32)))
    t._step(x, y)
    changed = {n for n, p in t.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "nothing trained"
    assert changed <= allowed, f"non-BN parameters changed: {sorted(changed - allowed)[:3]}"
    # frozen weights get no gradient at all (no weight-gradient work in bn mode)
    assert all(p.grad is None for n, p in t.model.named_parameters() if n not in allowed)
    if bn_params == "last":
        # FairNAS: one step trains every candidate op of every layer exactly once -> every last BN moved
        assert changed == {n for n in allowed}


def test_all_mode_trains_convolutions(tmp_path, digits):
    t = _trainer(tmp_path, digits, epochs=1, train_mode="all")
    w = t.model.head.conv.weight.detach().clone()
    x, y = next(iter(torch.utils.data.DataLoader(t.data.train, 32)))
    t._step(x, y)
    assert not torch.equal(w, t.model.head.conv.weight)


def test_configure_trainable_rejects_unknown_modes():
    sup = Supernet(get_space("spos-small"))
    with pytest.raises(BNNASError, match="unknown train mode"):
        configure_trainable(sup, "weights")
    with pytest.raises(BNNASError, match="unknown bn_params"):
        configure_trainable(sup, "bn", "first")


def test_fairnas_strict_fairness():
    space = get_space("fairnas-imagenet")
    s = FairSampler(space, seed=0)
    for step in range(5):
        paths = np.stack(s.paths(step))  # (N, L)
        assert paths.shape == (6, 19)
        for l in range(19):
            assert sorted(paths[:, l]) == list(range(6)), "each op of each layer exactly once per group"
    # ragged space: 7-choice layers are fair, 1-choice (fixed identity) layers always pick their one op
    space = get_space("spos-imagenet")
    paths = np.stack(FairSampler(space, seed=1).paths(0))
    assert (paths[:, [1, 5, 6, 9]] == 0).all()
    assert all(sorted(paths[:, l]) == list(range(6)) for l in (0, 2, 3, 4, 20))


def test_uniform_sampler_is_uniform_and_stateless():
    space = get_space("spos-imagenet")
    s = UniformSampler(space, seed=0)
    assert (s.paths(7)[0] == UniformSampler(space, seed=0).paths(7)[0]).all()
    counts = np.bincount(np.stack([s.paths(i)[0][0] for i in range(6000)]), minlength=6)
    assert counts.min() > 850 and counts.max() < 1150


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_resume_equals_uninterrupted_at_epoch_boundary(tmp_path, digits):
    full = _trainer(tmp_path / "full", digits)
    full.fit()
    ref = _state(full.model)

    part = _trainer(tmp_path / "part", digits, epochs=2)
    part.fit(on_epoch_end=lambda t: True)  # "interrupted" after epoch 1 (checkpoint written)
    assert part.epoch == 1
    resumed = _trainer(tmp_path / "part", digits)
    resumed.fit(resumed.existing_checkpoint())
    for k, v in _state(resumed.model).items():
        assert torch.equal(v, ref[k]), k
    assert [h.train_loss for h in resumed.history] == [h.train_loss for h in full.history]


@pytest.mark.slow
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, digits):
    kw = dict(epochs=1, ckpt_every=3, sampler="spos")
    full = _trainer(tmp_path / "full", digits, **kw)
    full.fit()
    ref = _state(full.model)

    crashed = _trainer(tmp_path / "crash", digits, **kw)
    real_step = crashed._step

    def crash_at_5(x, y):
        if crashed.global_step == 5:
            raise KeyboardInterrupt
        real_step(x, y)

    crashed._step = crash_at_5
    with pytest.raises(KeyboardInterrupt):
        crashed.fit()
    resumed = _trainer(tmp_path / "crash", digits, **kw)
    resumed.fit(resumed.existing_checkpoint())
    assert resumed.global_step == full.global_step
    for k, v in _state(resumed.model).items():
        assert torch.equal(v, ref[k]), k


def test_resume_refuses_other_settings(tmp_path, digits):
    t = _trainer(tmp_path, digits, epochs=1)
    t.fit()
    other = _trainer(tmp_path, digits, epochs=1, sampler="fairnas")
    with pytest.raises(BNNASError, match="other settings.*sampler"):
        other.fit(other.existing_checkpoint())


def test_checkpoint_is_written_atomically(tmp_path, digits, monkeypatch):
    t = _trainer(tmp_path, digits, epochs=1)
    t.fit()
    good = t.ckpt_path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        t.save()
    assert t.ckpt_path.read_bytes() == good  # the old checkpoint survives a failed write
    assert not list(tmp_path.glob(".supernet.pth.*"))  # and no temp file is left behind


def test_resume_refuses_a_checkpoint_of_an_earlier_format(tmp_path, digits):
    """A checkpoint without this version's state format (here: the record layout before the trainers shared one)
    is refused with one line, by resume and by --supernet reuse alike."""
    from bnnas.outputs.checkpoint import atomic_save, load_checkpoint
    from bnnas.training.supernet_trainer import load_supernet

    t = _trainer(tmp_path / "now", digits, epochs=2)
    t.fit(on_epoch_end=lambda t: True)
    old = {k: v for k, v in load_checkpoint(t.ckpt_path).items() if k != "state_format"}
    old["history"] = [{("loss" if k == "train_loss" else k): v for k, v in h.items()} for h in old["history"]]
    atomic_save(old, tmp_path / "old" / "supernet.pth")
    resumed = _trainer(tmp_path / "old", digits, epochs=2)
    with pytest.raises(BNNASError, match=r"supernet\.pth is a checkpoint in format of an earlier bnnas.*another"):
        resumed.fit(resumed.existing_checkpoint())
    with pytest.raises(BNNASError, match="format of an earlier bnnas"):
        load_supernet(tmp_path / "old" / "supernet.pth")


def test_default_lr_scales_with_the_global_batch():
    from bnnas.training.engine import scaled_lr
    from bnnas.training.retrainer import RetrainConfig

    assert SupernetTrainConfig(batch_size=64).peak_lr() == 0.05  # the floor
    assert SupernetTrainConfig(batch_size=256, world_size=4).peak_lr() == scaled_lr(0.8, 256, 4) == 0.8
    assert RetrainConfig(batch_size=128, world_size=8).peak_lr() == 0.5
    assert SupernetTrainConfig(batch_size=256, world_size=4, lr=0.3).peak_lr() == 0.3


def test_bn_transitions_trains_every_weight_of_the_searchable_shape_changing_layers_only():
    """bn-transitions: BN-only, plus every weight of the candidates of searchable layers that change width or
    stride (NAS-Bench-Macro's three width-doubling layers); residual MBConvs, stem and head keep frozen weights."""
    net = Supernet(get_space("nas-bench-macro-half"))
    trained = {id(p) for p in configure_trainable(net, "bn-transitions", "last")}
    for spec, layer in zip(net.space.layers, net.layers):
        convs = [m.weight for m in layer.modules() if isinstance(m, nn.Conv2d)]
        transition = spec.stride != 1 or spec.cin != spec.cout
        assert all((id(w) in trained) == transition for w in convs), spec
    assert not any(id(p) in trained for p in [*net.stem.parameters(), net.head.conv.weight, net.head.fc.weight])
    bn_only = {id(p) for p in configure_trainable(net, "bn", "last")}
    assert bn_only < trained
