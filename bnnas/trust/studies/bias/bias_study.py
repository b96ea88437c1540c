"""The bias study (``bnnas bias``): a BN-only supernet per form of one space, the exact search's picks at several
budgets, and optionally the picks at the default budget trained from scratch. The measurements themselves are the
pure functions of :mod:`bnnas.trust.studies.bias.bias`; the report is :mod:`bnnas.trust.studies.bias.bias_report`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import bnnas.trust.studies.bias.bias as bias
from bnnas.core.arch import Arch
from bnnas.core.space import SearchSpace, get_space
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.indicators.bn import ScoreTable
from bnnas.indicators.registry import build_indicator
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.training.distributed import DistInfo
from bnnas.training.proxy import ProxyConfig, train_from_scratch
from bnnas.trust.studies.bias.bias_report import bias_md
from bnnas.trust.studies.study_config import SupernetSpec
from bnnas.trust.studies.study_supernets import obtain_supernet

FORMAT = "bnnas.bias/1"


@dataclass
class BiasConfig:
    """What the bias study trains and searches; ``forms`` maps ``biased`` / ``unbiased`` to (space name, checkpoint
    to reuse or None)."""

    forms: dict[str, tuple[str, str | None]] = field(default_factory=lambda: {
        "biased": ("biased-small", None), "unbiased": ("unbiased-small", None)})
    epochs: int = 10
    batch_size: int = 32
    bn_params: str = "last"
    indicator: str = "bn"
    budgets: list[float] | None = None  # MFLOPs; None: spread over the range (bias.budgets_for)
    seed: int = 0
    proxy: ProxyConfig | None = None  # set: train the default budget's picks from scratch
    quiet: bool = True  # no per-epoch progress bars while the supernets train


def bias_spaces(forms: dict[str, tuple[str, str | None]], num_classes: int) -> dict[str, SearchSpace]:
    """The spaces of both forms; refused unless they offer the same candidates (two forms of one space)."""
    spaces = {k: get_space(name, num_classes) for k, (name, _) in forms.items()}
    if [l.choices for l in spaces["biased"].layers] != [l.choices for l in spaces["unbiased"].layers]:
        raise BNNASError(f"{forms['biased'][0]} and {forms['unbiased'][0]} do not offer the same candidates; the bias "
                         "measurement compares two forms of one space")
    return spaces


def _measure_form(form: str, space: SearchSpace, data: ClassificationData, cfg: BiasConfig, budgets: list[float],
                  work_dir: Path, device: torch.device, dist: DistInfo) -> dict | None:
    """One form's supernet (trained or reused), its op scores and the exact search's picks (None off rank 0)."""
    name, ckpt = cfg.forms[form]
    spec = SupernetSpec("bn", cfg.epochs, cfg.batch_size, bn_params=cfg.bn_params, seed=cfg.seed, checkpoint=ckpt)
    model, info = obtain_supernet(space, data, spec, work_dir / f"supernet-{form}", device, dist, cfg.quiet)
    if not dist.is_main:
        return None
    ind = build_indicator(cfg.indicator, model.eval(), data=data, device=device, seed=cfg.seed)
    if not isinstance(ind, ScoreTable):
        raise BNNASError(f"the bias measurement needs an additive indicator (exact search); {cfg.indicator} "
                         "is not")
    picks = bias.bias_picks(space, ind.scores, budgets)
    return {"space": name, "bn_after_every_op": space.bn_after_every_op, "supernet": info["source"],
            "supernet_epochs": info["epochs"], "supernet_seconds": info["seconds"],
            "mean_score_by_kind": bias.mean_score_by_kind(space, ind.scores), "picks": picks}


def _retrain_picks(out: dict, spaces: dict[str, SearchSpace], data: ClassificationData, proxy: ProxyConfig,
                   device: torch.device) -> None:
    """Train each form's pick at the space's default budget (else the middle one) from scratch, into ``out``."""
    budgets = out["budgets_m"]
    default = spaces["biased"].default_budget or budgets[len(budgets) // 2]
    for form, f in out["forms"].items():
        pick = min(f["picks"], key=lambda r: abs(r["budget_m"] - default))
        f["retrained"] = {"budget_m": pick["budget_m"], **train_from_scratch(
            Arch(spaces[form], tuple(pick["choices"])), data, proxy, device)}
    out["proxy"] = proxy.to_dict()


def run_bias_study(spaces: dict[str, SearchSpace], data: ClassificationData, cfg: BiasConfig, work_dir: Path,
                   device: torch.device, dist: DistInfo = DistInfo(), started: float | None = None) -> dict | None:
    """The whole study on the spaces of :func:`bias_spaces`; writes ``bias.json`` and ``bias.md`` to ``work_dir``
    and returns the result on rank 0 (None elsewhere). ``started``: the caller's ``time.perf_counter()`` when the
    study began (data loading included in ``wall_seconds``), else now."""
    t_all = time.perf_counter() if started is None else started
    out: dict = {"format": FORMAT, "data": data.name, "epochs": cfg.epochs, "indicator": cfg.indicator,
                 "forms": {}}
    budgets = list(cfg.budgets) if cfg.budgets else bias.budgets_for(spaces["biased"])
    out["budgets_m"] = budgets
    out["uniform_conv_share"] = bias.uniform_conv_share(spaces["biased"])
    for form, space in spaces.items():
        res = _measure_form(form, space, data, cfg, budgets, work_dir, device, dist)
        if res is not None:  # rank 0 only
            out["forms"][form] = res
    if not dist.is_main:
        return None
    if cfg.proxy is not None:
        _retrain_picks(out, spaces, data, cfg.proxy, device)
    out["wall_seconds"] = time.perf_counter() - t_all
    atomic_write_text(work_dir / "bias.json", json.dumps(out, indent=2) + "\n")
    atomic_write_text(work_dir / "bias.md", bias_md(out))
    return out
