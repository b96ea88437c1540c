"""Row 3: scoring + searching 1000 subnets with the paper's evolutionary search, and the exact solver, CPU wall time,
in the paper's ImageNet space (spos-imagenet) at 470 MFLOPs.

The score table comes from a real supernet whose indicator BNs' gamma are drawn at random (as after training; a
fresh supernet has gamma = 1 everywhere, which would make every subnet tie). Reading the table from the supernet is
timed separately; the EA then scores its ~1000 candidates from the table and searches.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from util import RowResult, Stat

BUDGET = 470e6


def run(cfg) -> RowResult:
    from bnnas import get_space
    from bnnas.core.flops import flops_table
    from bnnas.indicators.bn import bn_score_table
    from bnnas.search import evolutionary_search, exact_search, num_choices
    from bnnas.core.supernet import Supernet

    space = get_space("spos-imagenet")
    sup = Supernet(space)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _, _, bn in sup.indicator_bns():
            if bn is not None:
                bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=g))
    ft, nc = flops_table(space), num_choices(space)
    wall: dict[str, list[float]] = {"table": [], "ea": [], "exact": []}
    cpu: dict[str, list[float]] = {"table": [], "ea": [], "exact": []}
    evaluated, gap = [], []

    def timed(key, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall[key].append(time.perf_counter() - w0)
        cpu[key].append(time.process_time() - c0)
        return out

    for rep in range(cfg.search_warmup + cfg.reps_search):
        table = timed("table", lambda: bn_score_table(sup))
        ea = timed("ea", lambda: evolutionary_search(table.batch, ft, BUDGET, nc, seed=rep))
        ex = timed("exact", lambda: exact_search(table, ft, BUDGET))
        evaluated.append(ea.evaluated)
        gap.append(ex.score - ea.score)
        assert ea.cost <= BUDGET and ex.cost <= BUDGET and ex.score >= ea.score - 1e-9
    n = cfg.search_warmup
    W = {k: Stat(np.asarray(v[n:])) for k, v in wall.items()}
    C = {k: Stat(np.asarray(v[n:])) for k, v in cpu.items()}
    r = RowResult(3, "scoring + searching 1000 subnets (EA) and the exact solver, CPU wall time, spos-imagenet @ 470 MFLOPs",
                  "paper 0.14 s for 1000 subnets", "<= 20 ms EA, <= 20 ms exact")
    r.ours = f"EA {W['ea'].median * 1e3:.1f} ms, exact {W['exact'].median * 1e3:.1f} ms (+ table {W['table'].median * 1e3:.1f} ms)"
    r.met = W["ea"].median <= 0.020 and W["exact"].median <= 0.020
    r.details += [
        f"EA    wall {W['ea'].fmt(1, 1e3, ' ms')}; process CPU {C['ea'].fmt(1, 1e3, ' ms')}; "
        f"{int(np.median(evaluated))} subnets scored per search",
        f"exact wall {W['exact'].fmt(2, 1e3, ' ms')}; process CPU {C['exact'].fmt(2, 1e3, ' ms')}",
        f"BN score table from the supernet ({sum(1 for *_, b in sup.indicator_bns() if b is not None)} BNs) "
        f"wall {W['table'].fmt(2, 1e3, ' ms')}",
        f"EA best is {np.median(gap):.4f} below the exact optimum (median over seeds; 0 = found it)",
    ]
    r.data = {"wall": {k: v[n:] for k, v in wall.items()}, "cpu": {k: v[n:] for k, v in cpu.items()},
              "evaluated": evaluated[n:], "gap": gap[n:]}
    return r
