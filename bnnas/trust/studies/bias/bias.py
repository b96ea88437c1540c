"""BN-NAS's bias toward convolutions, measured, and BNNAS++'s fix (an unbiased space) compared.

The same candidates (6 MBConv ops, identity, 3x3 avg/max pooling) in two forms:

* ``biased-small`` -- BN-NAS's form: only the MBConv ops end in a BN, so parameter-free ops have no gamma, score 0
  under the BN indicator, and can only win when the budget forces them;
* ``unbiased-small`` -- BNNAS++'s fix: every candidate ends in an affine BN, whose gamma trains like the others.

A BN-only supernet is trained in each form with identical settings; the exact search then picks an arch at several
FLOPs budgets, and we report the share of MBConv (conv) picks among the layers that *could* have taken a
parameter-free op, next to the share a uniform random pick would give.
"""

from __future__ import annotations

import numpy as np

from bnnas.core.arch import Arch
from bnnas.core.flops import flops_table
from bnnas.indicators.bn import ScoreTable
from bnnas.search import exact_search
from bnnas.core.space import SearchSpace, is_parameter_free, parse_op


def free_layers(space: SearchSpace) -> list[int]:
    """Layers offering at least one parameter-free candidate (identity / pooling)."""
    return [i for i, l in enumerate(space.layers) if len(l.choices) > 1 and any(is_parameter_free(o) for o in l.choices)]


def conv_share(space: SearchSpace, choices) -> dict:
    """Share of MBConv picks among the layers that offer a parameter-free op, and among all searchable layers."""
    ops = [l.choices[int(c)] for l, c in zip(space.layers, choices)]
    fl = free_layers(space)
    searchable = [i for i, l in enumerate(space.layers) if len(l.choices) > 1]
    in_free = [not is_parameter_free(ops[i]) for i in fl]
    return {"conv_share_free_layers": float(np.mean(in_free)) if fl else None,
            "conv_share_searchable": float(np.mean([not is_parameter_free(ops[i]) for i in searchable])),
            "free_layers": len(fl), "picked_param_free": [ops[i] for i in fl if is_parameter_free(ops[i])]}


def uniform_conv_share(space: SearchSpace) -> float:
    """Expected conv share on the free layers if each layer's op were drawn uniformly."""
    fl = free_layers(space)
    return float(np.mean([sum(not is_parameter_free(o) for o in space.layers[i].choices) / len(space.layers[i].choices)
                          for i in fl]))


def mean_score_by_kind(space: SearchSpace, table: np.ndarray) -> dict:
    """Mean indicator score of each op kind over the free layers (why the picks go the way they go)."""
    acc: dict[str, list[float]] = {}
    for i in free_layers(space):
        for c, op in enumerate(space.layers[i].choices):
            kind = "mbconv" if parse_op(op)[0] == "mbconv" else op
            acc.setdefault(kind, []).append(float(table[i, c]))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def budgets_for(space: SearchSpace, fractions=(0.1, 0.25, 0.5, 0.75, 1.0)) -> list[float]:
    """MFLOPs budgets at fractions of the way from the smallest to the largest subnet, plus the space default."""
    cost = flops_table(space)
    lo, hi = cost.min_total / 1e6, cost.max_total / 1e6
    out = sorted({round(lo + f * (hi - lo), 3) for f in fractions} | ({space.default_budget} if space.default_budget else set()))
    return [b for b in out if b >= lo]


def bias_picks(space: SearchSpace, table: np.ndarray, budgets_m: list[float]) -> list[dict]:
    cost = flops_table(space)
    rows = []
    for b in budgets_m:
        r = exact_search(ScoreTable(table), cost, b * 1e6)
        rows.append({"budget_m": b, "flops_m": r.cost / 1e6, "ops": Arch(space, tuple(r.choices)).ops,
                     "choices": r.choices.tolist(), **conv_share(space, r.choices)})
    return rows
