"""Run a model in ways that move its BN statistics (recalibration, batch-statistics scoring) and put them back."""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextlib.contextmanager
def preserved_bn_stats(modules: nn.Module | Iterable[nn.Module]) -> Iterator[list[_BatchNorm]]:
    """Yield the BN layers in ``modules``; on exit, however the block ends, restore each one's momentum, running
    mean/var and batch counter."""
    roots = [modules] if isinstance(modules, nn.Module) else list(modules)
    bns = list(dict.fromkeys(m for root in roots for m in root.modules() if isinstance(m, _BatchNorm)))
    saved = [(bn.momentum, *(None if t is None else t.clone()
                             for t in (bn.running_mean, bn.running_var, bn.num_batches_tracked))) for bn in bns]
    try:
        yield bns
    finally:
        for bn, (momentum, *buffers) in zip(bns, saved):
            bn.momentum = momentum
            for t, old in zip((bn.running_mean, bn.running_var, bn.num_batches_tracked), buffers):
                if t is not None and old is not None:
                    t.copy_(old)
