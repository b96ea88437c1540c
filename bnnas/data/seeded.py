"""Deterministic data order and augmentation, so that a resumed run reproduces the uninterrupted one exactly.

The sample order of an epoch is a permutation drawn from (seed, epoch); each sample's augmentation RNG is seeded from
(seed, epoch, index). Neither depends on worker count, process restarts or where in the epoch a run resumed.
"""

from __future__ import annotations

import random
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class SeededDataset(Dataset):
    def __init__(self, dataset: Dataset, seed: int = 0):
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        s = int(np.random.SeedSequence([self.seed, self.epoch, int(index)]).generate_state(1)[0])
        torch.manual_seed(s)
        random.seed(s)
        return self.dataset[index]


class ResumableSampler(Sampler[int]):
    """Shuffled (seed, epoch) order, sharded over DDP ranks, starting ``start`` samples into this rank's shard."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _shard(self) -> np.ndarray:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else np.arange(self.n)
        per_rank = self.n // self.world_size if self.drop_last else -(-self.n // self.world_size)
        if not self.drop_last:
            order = np.resize(order, per_rank * self.world_size)
        return order[self.rank : per_rank * self.world_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard()[self.start :].tolist())

    def __len__(self) -> int:
        return max(0, len(self._shard()) - self.start)
