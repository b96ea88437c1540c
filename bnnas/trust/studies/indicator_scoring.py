"""Indicators of the ranking studies: ``name@supernet`` specs parsed, and a population scored with its timings."""

from __future__ import annotations

import time

import numpy as np
import torch

from bnnas.core.space import SearchSpace
from bnnas.core.supernet import Supernet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.indicators.bn import ScoreTable
from bnnas.indicators.registry import BASELINES, as_scorer, build_indicator, known_indicators
from bnnas.trust.studies.study_config import SUPERNETS, StudyConfig


def parse_indicator_spec(spec: str) -> tuple[str, str | None]:
    """``name@bn`` / ``name@bnall`` / ``name@all`` / ``name@init`` / a baseline (``flops``, ``params``, ``depth``)
    -> (name, supernet or None)."""
    name, _, sup = spec.partition("@")
    known = known_indicators()
    if name not in known:
        raise BNNASError(f"unknown indicator {name!r} in {spec!r}; known: {', '.join(known)}")
    if sup and sup not in SUPERNETS:
        raise BNNASError(f"indicator {spec!r}: the part after @ must be one of {', '.join(SUPERNETS)} "
                         "(the BN-only, the BN-only with every BN trained, the all-parameters or the untrained "
                         "supernet)")
    if not sup and name not in BASELINES:
        raise BNNASError(f"indicator {spec!r} needs a supernet: write {name}@bn, {name}@all or {name}@init")
    return name, sup or None


def score_indicator(name: str, supernet: Supernet | None, space: SearchSpace, pop: np.ndarray,
                    data: ClassificationData, device: torch.device, cfg: StudyConfig) -> dict:
    """Scores of ``pop`` under one indicator, with timings: build, scoring K subnets, and a search-sized workload."""
    if supernet is None:
        supernet = Supernet(space)  # the baselines read only the space
    supernet.eval()
    t0 = time.perf_counter()
    ind = build_indicator(name, supernet, data=data, device=device, seed=cfg.seed,
                          calib_batches=cfg.spos_calib_batches, max_eval=cfg.spos_max_eval)
    t_build = time.perf_counter() - t0
    scorer = as_scorer(ind)
    t0 = time.perf_counter()
    scores = np.asarray(scorer(pop), dtype=np.float64)
    t_score = time.perf_counter() - t0
    additive = isinstance(ind, ScoreTable)
    if additive:  # cheap enough to measure a search-sized workload directly
        rng = np.random.default_rng(cfg.seed)
        n_choices = np.array([len(l.choices) for l in space.layers])
        big = (rng.random((cfg.search_samples, len(n_choices))) * n_choices).astype(np.int64)
        t0 = time.perf_counter()
        scorer(big)
        t_search, measured = time.perf_counter() - t0, True
    else:
        t_search, measured = t_score / len(pop) * cfg.search_samples, False
    return {"scores": scores.tolist(), "additive": additive, "build_seconds": t_build, "score_seconds": t_score,
            "per_subnet_ms": 1e3 * t_score / len(pop), f"search_{cfg.search_samples}_seconds": t_search,
            "search_seconds_measured": measured}
