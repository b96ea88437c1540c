"""The contract every trainer shares: what an epoch's running statistics mean, and what each gradient clip does."""

import pytest
import torch
from torch.utils.data import Subset

from bnnas import get_space
from bnnas.core.arch import Arch
from bnnas.core.supernet import Supernet
from bnnas.data import ClassificationData
from bnnas.training.proxy import ProxyConfig, ProxyTrainer
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer

CPU = torch.device("cpu")


def _data(digits, n=64):
    return ClassificationData("digits", Subset(digits.train, range(n)), digits.val, 10, 32)


def _proxy(digits, **kw):
    space = get_space("spos-small", 10)
    arch = Arch(space, tuple(1 if len(layer.choices) > 1 else 0 for layer in space.layers))
    return ProxyTrainer(arch, _data(digits), ProxyConfig(**{"epochs": 1, "batch_size": 16, **kw}), CPU)


def _supernet(tmp_path, digits, **kw):
    torch.manual_seed(0)
    cfg = SupernetTrainConfig(**{"epochs": 1, "batch_size": 16, "workers": 0, "sampler": "fairnas", **kw})
    return SupernetTrainer(Supernet(get_space("spos-small", 10)), _data(digits), cfg, tmp_path, CPU,
                           show_progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["proxy", "supernet"])
def test_epoch_statistics_are_means_over_images_in_every_trainer(tmp_path, digits, kind):
    trainer = _proxy(digits) if kind == "proxy" else _supernet(tmp_path, digits)
    seen = []
    real = trainer._forward_backward

    def recording(x, y):
        loss, correct = real(x, y)
        seen.append((float(loss), float(correct), len(y)))
        return loss, correct

    trainer._forward_backward = recording
    trainer.train_epochs()
    images = sum(n for *_, n in seen)
    assert len(seen) == trainer.steps_per_epoch == 4 and images == 64
    rec = trainer.history[0]
    assert rec.train_loss == pytest.approx(sum(loss * n for loss, _, n in seen) / images, rel=1e-12)
    assert rec.train_acc == pytest.approx(sum(c for _, c, _ in seen) / images, rel=1e-12)
    assert 0.0 <= rec.train_acc <= 1.0


def _grads_at_optimizer_step(trainer) -> list[torch.Tensor]:
    grads = []
    real = trainer.optimizer.step

    def recording(*a, **k):
        grads.extend(p.grad.clone() for p in trainer.model.parameters() if p.grad is not None)
        return real(*a, **k)

    trainer.optimizer.step = recording
    x, y = next(iter(torch.utils.data.DataLoader(trainer.data.train, 16)))
    trainer._step(x, y)
    return grads


def test_value_clip_bounds_every_gradient_element(tmp_path, digits):
    grads = _grads_at_optimizer_step(_supernet(tmp_path, digits, grad_clip_value=1e-4))
    assert grads and max(float(g.abs().max()) for g in grads) == pytest.approx(1e-4)  # clipped, and to the bound


def test_norm_clip_bounds_the_global_norm_only(digits):
    clipped = _grads_at_optimizer_step(_proxy(digits, grad_clip_norm=1e-3))
    free = _grads_at_optimizer_step(_proxy(digits, grad_clip_norm=0.0))
    norm = lambda gs: float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs])))  # noqa: E731
    assert norm(free) > 1e-2 and norm(clipped) == pytest.approx(1e-3, rel=1e-4)
    # a norm clip scales every gradient by one factor: the direction is kept
    ratios = [float((c / f)[f.abs() > 1e-6].mean()) for c, f in zip(clipped, free) if (f.abs() > 1e-6).any()]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-3)
