"""Which subnets the ranking study trains: K of them spread evenly over the FLOPs range."""

from __future__ import annotations

import numpy as np

from bnnas.core.flops import flops_table
from bnnas.core.space import SearchSpace
from bnnas.errors import BNNASError


def _cost_ordered_pool(space: SearchSpace, n: int, rng: np.random.Generator) -> np.ndarray:
    """n subnets whose sizes cover the whole range: each draws a size t in [0, 1] and picks, in every layer, the op
    near position t of that layer's cost order (plus noise), so the smallest and largest subnets are reachable --
    uniform draws concentrate around the middle of the FLOPs range."""
    table = flops_table(space).per_op
    orders = [np.argsort(row[: len(l.choices)], kind="stable") for row, l in zip(table, space.layers)]
    t = rng.random(n)
    pool = np.empty((n, len(space.layers)), dtype=np.int64)
    for li, order in enumerate(orders):
        m = len(order)
        pos = np.clip(np.rint(t * (m - 1) + rng.normal(0.0, 0.8, n)), 0, m - 1).astype(np.int64)
        pool[:, li] = order[pos]
    return pool


def stratified_sample(space: SearchSpace, k: int, seed: int = 0, pool_size: int = 20000,
                      max_flops: float | None = None) -> np.ndarray:
    """K distinct subnets, one from each of K equal-width FLOPs bins between the smallest and largest subnet
    (``max_flops`` in MFLOPs caps the range). A bin with no subnet takes the unused subnet nearest its centre."""
    if k < 2:
        raise BNNASError(f"the ranking study needs at least 2 subnets, got K={k}")
    rng = np.random.default_rng(seed)
    cost = flops_table(space)
    pool = np.unique(_cost_ordered_pool(space, pool_size, rng), axis=0)
    f = cost.batch(pool)
    lo, hi = cost.min_total, cost.max_total if max_flops is None else min(cost.max_total, max_flops * 1e6)
    if hi <= lo:
        raise BNNASError(f"--max-flops {max_flops} is below the smallest subnet ({lo / 1e6:.2f} MFLOPs)")
    keep = f <= hi
    pool, f = pool[keep], f[keep]
    if len(pool) < k:
        raise BNNASError(f"only {len(pool)} distinct subnets found under the FLOPs cap; ask for fewer than K={k}")
    edges = np.linspace(lo, hi, k + 1)
    used = np.zeros(len(pool), dtype=bool)
    picks = []
    for b in range(k):
        inside = np.flatnonzero((f >= edges[b]) & (f <= edges[b + 1]) & ~used)
        if len(inside):
            i = int(rng.choice(inside))
        else:
            centre = 0.5 * (edges[b] + edges[b + 1])
            free = np.flatnonzero(~used)
            i = int(free[np.argmin(np.abs(f[free] - centre))])
        used[i] = True
        picks.append(pool[i])
    out = np.stack(picks)
    return out[np.argsort(cost.batch(out), kind="stable")]
