"""Per-op FLOPs/params lookup tables.

Convention (the NAS papers'): multiply-accumulates of every convolution plus the FC counted as (2*C_in - 1)*C_out (BN-NAS,
SPOS) or C_in*C_out (NAS-Bench-Macro; the space's ``fc_flops`` says which), at the space's input size, batch 1; BN,
activations, pooling and adds are free. Params: conv and FC weights, FC bias, BN gamma and beta. Because each layer has fixed in/out widths, a subnet's cost is ``base + sum_l table[l, choice_l]``,
which is what makes the exact knapsack search possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bnnas.core.space import LayerSpec, SearchSpace, parse_op, space_at_resolution

if TYPE_CHECKING:
    from bnnas.core.arch import Arch


def _se_channels(mid: int) -> int:
    return round(mid * 0.25)  # timm SqueezeExcite(rd_ratio=0.25)


def op_cost(op: str, layer: LayerSpec, bn_after_param_free: bool = False, se: bool = False) -> tuple[int, int]:
    """(MACs, params) of one candidate op in one layer."""
    kind, k, e = parse_op(op)
    hin, hout = layer.size_in, layer.size_out
    if kind == "idconv":
        return layer.cin * layer.cout * hout * hout, layer.cin * layer.cout + 2 * layer.cout
    if kind != "mbconv":
        return 0, (2 * layer.cout if bn_after_param_free else 0)
    mid = layer.cin * e
    macs = layer.cin * mid * hin * hin + mid * k * k * hout * hout + mid * layer.cout * hout * hout
    params = layer.cin * mid + mid * k * k + mid * layer.cout + 2 * (mid + mid + layer.cout)
    if se:
        rd = _se_channels(mid)
        macs += 2 * mid * rd
        params += mid * rd + rd + rd * mid + mid
    return macs, params


def fixed_cost(space: SearchSpace) -> tuple[int, int]:
    """(MACs, params) of the stem, the fixed first block (if any), the head conv and the FC."""
    h1 = -(-space.input_size // space.stem_stride)
    s, f = space.stem_channels, space.first_channels
    macs, params = 3 * s * 9 * h1 * h1, 3 * s * 9 + 2 * s
    if f is not None:
        macs += s * 9 * h1 * h1 + s * f * h1 * h1
        params += s * 9 + 2 * s + s * f + 2 * f
    last = space.layers[-1]
    hf, c, hc, nc = last.size_out, last.cout, space.head_channels, space.num_classes
    macs += c * hc * hf * hf + (hc if space.fc_flops == "in*out" else 2 * hc - 1) * nc
    params += c * hc + 2 * hc + hc * nc + nc
    return macs, params


@dataclass(frozen=True)
class CostTable:
    """``per_op[l, c]``: cost of choice c in layer l (``inf`` where layer l has fewer choices); ``base``: fixed part."""

    per_op: np.ndarray
    base: float
    unit: str

    def of(self, choices) -> float:
        choices = np.asarray(choices)
        return float(self.base + self.per_op[np.arange(len(choices)), choices].sum())

    def batch(self, pop: np.ndarray) -> np.ndarray:
        """Costs of a (B, L) array of subnets."""
        L, N = self.per_op.shape
        return self.base + np.take(self.per_op, pop + np.arange(0, L * N, N)).sum(1)  # flat gather: fast

    @property
    def min_total(self) -> float:
        return float(self.base + np.nanmin(self.per_op, axis=1).sum())

    @property
    def max_total(self) -> float:
        finite = np.where(np.isfinite(self.per_op), self.per_op, -np.inf)
        return float(self.base + finite.max(1).sum())


def _table(space: SearchSpace, which: int, se: bool) -> CostTable:
    per_op = np.full((len(space.layers), space.max_choices), np.inf)
    for li, layer in enumerate(space.layers):
        for ci, op in enumerate(layer.choices):
            per_op[li, ci] = op_cost(op, layer, space.bn_after_every_op, se)[which]
    return CostTable(per_op, float(fixed_cost(space)[which]), "MACs" if which == 0 else "params")


def flops_table(space: SearchSpace, se: bool = False) -> CostTable:
    return _table(space, 0, se)


def params_table(space: SearchSpace, se: bool = False) -> CostTable:
    return _table(space, 1, se)


def subnet_cost(arch: Arch, se: bool, input_size: int | None = None) -> tuple[float, float]:
    """(FLOPs, params) of ``SubNet(arch, se)`` (convs in multiply-accumulates), at ``input_size`` (default: the
    space's)."""
    space = space_at_resolution(arch.space, input_size or arch.space.input_size)
    return flops_table(space, se).of(arch.choices), params_table(space, se).of(arch.choices)
