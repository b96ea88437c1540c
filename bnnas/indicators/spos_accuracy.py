"""SPOS's accuracy indicator (the baseline BN-NAS replaces): for each subnet, recompute its BN statistics on
training batches, then measure accuracy on held-out data. Costly -- one recalibration + evaluation per subnet."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bnnas.core.bn_stats import preserved_bn_stats
from bnnas.core.supernet import Supernet
from bnnas.indicators.registry import register_indicator


class AccuracyIndicator:
    """Scores a (B, L) array of subnets by held-out top-1 after BN recalibration (higher is better)."""

    def __init__(self, supernet: Supernet, calib: Dataset, heldout: Dataset, calib_batches: int = 20,
                 batch_size: int = 128, max_eval: int | None = None, device: torch.device | str = "cpu", seed: int = 0):
        self.model = supernet.to(device)
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(seed)
        calib_loader = DataLoader(calib, batch_size, shuffle=True, generator=g, drop_last=False)
        # The same batches for every subnet, loaded once: the comparison is then about the subnets alone.
        self.calib = [b for _, b in zip(range(calib_batches), calib_loader)]
        n = len(heldout) if max_eval is None else min(max_eval, len(heldout))
        self.eval = list(DataLoader(torch.utils.data.Subset(heldout, range(n)), batch_size))

    @torch.no_grad()
    def accuracy(self, choices: Sequence[int]) -> float:
        choices = [int(c) for c in choices]
        with preserved_bn_stats(self.model.path_modules(choices)) as bns:  # leave the supernet as we found it
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average over the calibration batches
            self.model.train()
            for x, _ in self.calib:
                self.model(x.to(self.device), choices)
            self.model.eval()
            correct = total = 0
            for x, y in self.eval:
                correct += (self.model(x.to(self.device), choices).argmax(1).cpu() == y).sum().item()
                total += len(y)
        return correct / max(1, total)

    def __call__(self, pop: np.ndarray) -> np.ndarray:
        return np.array([self.accuracy(row) for row in np.atleast_2d(pop)])


@register_indicator("spos-acc")
def _spos_accuracy(supernet: Supernet, data=None, device="cpu", calib_batches: int = 20, max_eval: int | None = None,
                   **_ctx) -> AccuracyIndicator:
    from bnnas.errors import BNNASError

    if data is None or data.heldout is None:
        raise BNNASError("the spos-acc indicator needs held-out training images (use --holdout N with --data)")
    return AccuracyIndicator(supernet, data.train_eval or data.train, data.heldout, calib_batches,
                             max_eval=max_eval, device=device)
