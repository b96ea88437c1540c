"""Two published zero-cost proxies, evaluated on a supernet path, as pluggable indicators.

Neither is BNNAS++'s composite indicator (its equations are not published in a form we can reproduce); they are
candidates with a definition we can cite, measured next to the BN indicator by ``tools/correlation.py``.

* ``naswot`` -- Mellor, Turner, Storkey, Crowley, "Neural Architecture Search without Training", ICML 2021
  (arXiv 2006.04647). For a minibatch of N images, each image gets a binary code c_i with one bit per rectified unit
  of the network (1 where the unit's pre-activation is positive). With N_A units,
  K_H[i, j] = N_A - d_H(c_i, c_j) (Hamming distance), and the score is log|det K_H|.
  Ours: the rectifiers are the path's ReLU6 modules (a unit is "active" when its input is > 0, as for ReLU); BN uses
  the minibatch's statistics (train mode; the supernet's running statistics are restored afterwards).
* ``synflow`` -- Tanaka, Kunin, Yamins, Ganguli, "Pruning neural networks without any data by iteratively
  conserving synaptic flow", NeurIPS 2020 (arXiv 2006.05467); used as a NAS proxy by Abdelfattah, Mehrotra, Dudziak,
  Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (arXiv 2101.08134). Every parameter is replaced by its
  absolute value, an all-ones input goes through the linearised network, R = sum of the outputs, and the score is
  sum over conv/FC weights of theta * dR/dtheta. Ours follows the ICLR 2021 convention of disabling BN (its forward
  is the identity) and computes in float64; ReLU6 is treated as ReLU -- identity on the non-negative signals synflow
  propagates -- since a clip at 6 would zero the gradients of a linearised network. Reported as log(score)
  (monotone, so ranks are unchanged) because the raw value spans many orders of magnitude.

``flops``, ``params``, ``depth`` (a subnet's MFLOPs, parameters, non-identity layers: "bigger is better") and
``depth-largest`` (depth, ties broken towards more layers at their largest op) are registered here too, as the
baselines the others should beat.

Both proxies score a whole subnet (they are not sums of per-op terms), so they are callables, not :class:`ScoreTable`s, and
work with evolutionary/random search but not with the exact solver.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from bnnas.core.bn_stats import preserved_bn_stats
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import SearchSpace, is_identity
from bnnas.core.supernet import Supernet
from bnnas.indicators.bn import ScoreTable
from bnnas.indicators.registry import register_indicator

RECTIFIERS = (nn.ReLU, nn.ReLU6)


# -- NASWOT ---------------------------------------------------------------------------------------------------------
def hamming_kernel(codes: torch.Tensor) -> torch.Tensor:
    """K_H for binary codes (N, N_A): K[i, j] = N_A - Hamming(c_i, c_j) = #units where i and j agree."""
    c = codes.to(torch.float64)
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def naswot_from_codes(codes: torch.Tensor) -> float:
    """log|det K_H| (natural log) of the Hamming kernel of ``codes``; -inf if K_H is singular."""
    sign, logdet = torch.linalg.slogdet(hamming_kernel(codes))
    return float(logdet) if sign != 0 else float("-inf")


@contextlib.contextmanager
def _collect_codes(modules: Iterable[nn.Module]):
    """Record, for every rectifier that runs, which units of each image had a positive input."""
    codes: list[torch.Tensor] = []

    def hook(_mod, inputs):
        codes.append((inputs[0].detach() > 0).flatten(1))

    units = [m for mod in modules for m in mod.modules() if isinstance(m, RECTIFIERS)]
    handles = [m.register_forward_pre_hook(hook) for m in dict.fromkeys(units)]
    try:
        yield codes
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _batch_stats_without_side_effects(model: nn.Module):
    """Train-mode BN (batch statistics) without touching the running statistics."""
    was_training = model.training
    model.train()
    try:
        with preserved_bn_stats(model):
            yield
    finally:
        model.train(was_training)


@torch.no_grad()
def naswot_score(forward: Callable[[torch.Tensor], torch.Tensor], modules: Iterable[nn.Module], x: torch.Tensor,
                 model: nn.Module | None = None) -> float:
    """NASWOT of whatever ``forward`` runs on minibatch ``x``; ``modules`` are searched for rectifiers."""
    ctx = _batch_stats_without_side_effects(model) if model is not None else contextlib.nullcontext()
    with ctx, _collect_codes(modules) as codes:
        forward(x)
    if not codes:
        raise ValueError("no ReLU/ReLU6 ran in the forward pass: NASWOT needs rectified units")
    return naswot_from_codes(torch.cat(codes, 1).cpu())


class NaswotIndicator:
    """Scores (B, L) subnets by NASWOT on their supernet path, always on the same minibatch."""

    def __init__(self, supernet: Supernet, images: torch.Tensor, device: torch.device | str = "cpu"):
        self.model = supernet.to(device)
        self.x = images.to(device)

    def score(self, choices: Sequence[int]) -> float:
        choices = [int(c) for c in choices]
        return naswot_score(lambda x: self.model(x, choices), self.model.path_modules(choices), self.x, self.model)

    def __call__(self, pop: np.ndarray) -> np.ndarray:
        return np.array([self.score(row) for row in np.atleast_2d(pop)])


# -- synflow ------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _linearised(modules: Sequence[nn.Module]):
    """|theta| for every parameter, BN forward = identity, ReLU6 = ReLU, float64 -- for ``modules`` only (a
    supernet's path, not the whole supernet); everything is restored on exit."""
    modules = list(dict.fromkeys(modules))
    saved = [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]
    params = list(dict.fromkeys(p for m in modules for p in m.parameters()))
    flags = [p.requires_grad for p in params]
    dtype = params[0].dtype
    patched: list[nn.Module] = []
    for mod in modules:
        for m in mod.modules():
            # timm's BatchNormAct2d (a BN subclass) also applies its ReLU6; on the non-negative signals of the
            # linearised network that activation is the identity too, so skipping the whole module is exact.
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.forward = lambda x: x  # type: ignore[method-assign]
                patched.append(m)
            elif isinstance(m, nn.ReLU6):
                m.forward = torch.relu  # type: ignore[method-assign]
                patched.append(m)
    for m in modules:
        m.double()
    with torch.no_grad():
        for p in params:
            p.abs_()
            p.requires_grad_(False)
    try:
        yield
    finally:
        for m in patched:
            m.__dict__.pop("forward", None)  # back to the class's forward
        for m, state in zip(modules, saved):
            m.to(dtype)
            m.load_state_dict(state)
        for p, f in zip(params, flags):
            p.requires_grad_(f)
            p.grad = None


def synflow_score(forward: Callable[[torch.Tensor], torch.Tensor], params: Iterable[nn.Parameter],
                  modules: nn.Module | Sequence[nn.Module], input_shape: Sequence[int], log: bool = True) -> float:
    """Synflow of the network ``forward`` runs (built from ``modules``), summed over ``params`` (its conv/FC
    weights); log(score) if ``log``."""
    params = list(params)
    modules = [modules] if isinstance(modules, nn.Module) else list(modules)
    with _linearised(modules):
        for p in params:
            p.requires_grad_(True)
        out = forward(torch.ones(1, *input_shape, dtype=torch.float64, device=params[0].device))
        out.sum().backward()
        value = float(sum((p * p.grad).sum() for p in params if p.grad is not None).detach())
    if not log:
        return value
    return float(np.log(value)) if value > 0 else float("-inf")


def _weights(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    return [m.weight for mod in modules for m in mod.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


class SynflowIndicator:
    """Scores (B, L) subnets by log synflow of their supernet path (data-free: all-ones input)."""

    def __init__(self, supernet: Supernet, device: torch.device | str = "cpu"):
        self.model = supernet.to(device)
        s = supernet.space.input_size
        self.shape = (3, s, s)

    def score(self, choices: Sequence[int]) -> float:
        choices = [int(c) for c in choices]
        mods = self.model.path_modules(choices)
        return synflow_score(lambda x: self.model(x, choices), _weights(mods), mods, self.shape)

    def __call__(self, pop: np.ndarray) -> np.ndarray:
        return np.array([self.score(row) for row in np.atleast_2d(pop)])


# -- a trivial baseline every indicator should beat ----------------------------------------------------------------
@register_indicator("flops")
def _flops_indicator(supernet: Supernet, **_ctx) -> ScoreTable:
    """"Bigger is better": a subnet's MFLOPs as its score (additive). Needs no training; a baseline, not a method."""
    per_op = flops_table(supernet.space).per_op
    return ScoreTable(np.where(np.isfinite(per_op), per_op / 1e6, np.nan))


@register_indicator("params")
def _params_indicator(supernet: Supernet, **_ctx) -> ScoreTable:
    """"Bigger is better" by parameter count (millions, additive); a baseline."""
    per_op = params_table(supernet.space).per_op
    return ScoreTable(np.where(np.isfinite(per_op), per_op / 1e6, np.nan))


def _structural_scores(space: SearchSpace, per_op: Callable[[str, bool], float]) -> ScoreTable:
    """An additive table from ``per_op(op, is_its_layers_largest_op)`` (largest: most FLOPs)."""
    scores = np.full((len(space.layers), space.max_choices), np.nan)
    flops = flops_table(space).per_op
    for li, layer in enumerate(space.layers):
        largest = int(np.nanargmax(flops[li, : len(layer.choices)]))
        scores[li, : len(layer.choices)] = [per_op(op, ci == largest) for ci, op in enumerate(layer.choices)]
    return ScoreTable(scores)


@register_indicator("depth")
def _depth_indicator(supernet: Supernet, **_ctx) -> ScoreTable:
    """"Deeper is better": the number of layers that are not an identity (additive); a baseline."""
    return _structural_scores(supernet.space, lambda op, _largest: 0.0 if is_identity(op) else 1.0)


@register_indicator("depth-largest")
def _depth_largest_indicator(supernet: Supernet, **_ctx) -> ScoreTable:
    """Depth, ties broken towards more layers at their largest op (most FLOPs; k5e6 in NAS-Bench-Macro): an op scores
    L + 1 if it is not an identity, plus 1 if it is its layer's largest op, so the tie-break never outweighs a layer
    (integers, so equal archs tie exactly). The strongest free rule we know on NAS-Bench-Macro; a baseline."""
    per_layer = float(len(supernet.space.layers) + 1)
    return _structural_scores(supernet.space,
                              lambda op, largest: (0.0 if is_identity(op) else per_layer) + float(largest))


# -- registration ---------------------------------------------------------------------------------------------------
def _minibatch(data, n: int, seed: int) -> torch.Tensor:
    from bnnas.errors import BNNASError

    src = None if data is None else (data.train_eval or data.train)
    if src is None:
        raise BNNASError("the naswot indicator needs training images (a data set)")
    n = min(n, len(src))
    idx = np.random.default_rng(seed).choice(len(src), n, replace=False)
    return torch.stack([src[int(i)][0] for i in idx])


@register_indicator("naswot")
def _naswot(supernet: Supernet, data=None, device="cpu", naswot_batch: int = 64, seed: int = 0, **_ctx):
    return NaswotIndicator(supernet, _minibatch(data, naswot_batch, seed), device)


@register_indicator("synflow")
def _synflow(supernet: Supernet, device="cpu", **_ctx):
    return SynflowIndicator(supernet, device)
