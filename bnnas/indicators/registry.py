"""Indicator names -> factories (``--indicator NAME``). ``bn`` is built in; the modules in ``PLUGIN_MODULES`` register
the others when first imported, and they are imported on the first lookup of a name not yet known, so any entry
point can use any name without import-order surprises."""

from __future__ import annotations

import importlib
from typing import Callable

from bnnas.core.supernet import Supernet
from bnnas.errors import BNNASError
from bnnas.indicators.bn import ScoreTable, SubnetScorer, bn_score_table

_INDICATORS: dict[str, Callable[..., object]] = {}
PLUGIN_MODULES = ("bnnas.indicators.spos_accuracy", "bnnas.indicators.zero_cost")  # spos-acc; baselines, zero-cost
BASELINES = ("flops", "params", "depth", "depth-largest")  # read only the space: no supernet, no data
STRUCTURAL = ("depth", "depth-largest")  # the free rules that count layers; every indicator should beat them


def register_indicator(name: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """Register ``factory(supernet, **ctx) -> ScoreTable | SubnetScorer`` under ``name``."""

    def deco(fn: Callable[..., object]) -> Callable[..., object]:
        _INDICATORS[name] = fn
        return fn

    return deco


@register_indicator("bn")
def _bn_indicator(supernet: Supernet, **_ctx) -> ScoreTable:
    return bn_score_table(supernet)


def _load_plugins() -> None:
    for mod in PLUGIN_MODULES:
        importlib.import_module(mod)


def known_indicators() -> tuple[str, ...]:
    """Every registered indicator name, sorted (the plugins are loaded first)."""
    _load_plugins()
    return tuple(sorted(_INDICATORS))


def build_indicator(name: str, supernet: Supernet, **ctx) -> object:
    """The indicator ``name`` built for ``supernet`` (``ctx``: data, device, seed, ... as the factory needs)."""
    if name not in _INDICATORS:
        _load_plugins()
    if name not in _INDICATORS:
        raise BNNASError(f"unknown indicator {name!r}; known: {', '.join(known_indicators())}")
    return _INDICATORS[name](supernet, **ctx)


def as_scorer(indicator: object) -> SubnetScorer:
    """A (B, L) -> (B,) scoring function for either kind of indicator."""
    return indicator.batch if isinstance(indicator, ScoreTable) else indicator  # type: ignore[return-value]
