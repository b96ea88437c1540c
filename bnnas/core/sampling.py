"""Path samplers: which subnet(s) the supernet trains at each optimizer step.

Samplers are stateless functions of (seed, step), so a resumed run draws exactly the paths the uninterrupted one
would have drawn, and every DDP rank draws the same path (as the official code does) without communication.
"""

from __future__ import annotations

import numpy as np

from bnnas.errors import BNNASError
from bnnas.core.space import SearchSpace


class UniformSampler:
    """SPOS: one path per step, each layer's op drawn uniformly."""

    name = "spos"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.n_choices = np.array([len(l.choices) for l in space.layers])
        self.seed = seed

    def paths(self, step: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        return [rng.integers(0, self.n_choices)]


class FairSampler:
    """FairNAS strict fairness: each step runs N paths built from one random permutation of every layer's ops, so
    within the step every op of every N-choice layer is trained exactly once (gradients accumulate, one update).

    Layers with fewer than N choices (e.g. fixed identity) cycle a permutation of their own choices.
    """

    name = "fairnas"

    def __init__(self, space: SearchSpace, seed: int = 0):
        self.n_choices = np.array([len(l.choices) for l in space.layers])
        self.group = int(self.n_choices.max())
        self.seed = seed

    def paths(self, step: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        cols = []
        for n in self.n_choices:
            reps = -(-self.group // n)
            cols.append(np.concatenate([rng.permutation(n) for _ in range(reps)])[: self.group])
        return list(np.stack(cols, 1))


SAMPLERS = {"spos": UniformSampler, "fairnas": FairSampler}


def build_sampler(name: str, space: SearchSpace, seed: int = 0):
    if name not in SAMPLERS:
        raise BNNASError(f"unknown path sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name](space, seed)
