"""Ranking study: how well does each indicator rank subnets on *this* data?

1. Sample K subnets spread over the FLOPs range (one per equal-width FLOPs bin;
   :mod:`bnnas.trust.studies.correlation.study_sampling`).
2. Train each from scratch on a short proxy schedule (:mod:`bnnas.training.proxy`) -> held-out accuracy (ground truth;
   :mod:`bnnas.trust.studies.correlation.study_training`). Under torchrun the K trainings are sharded over the ranks
   and gathered on rank 0.
3. Train (or reuse) the supernets the indicators read, with :class:`SupernetTrainer`
   (:mod:`bnnas.trust.studies.study_supernets`): ``bn`` = BN-only (``train_mode='bn'``, the paper; ``--bn-params`` says
   which BNs train), ``bnall`` = BN-only with every BN training (``bn_params='all'``), ``all`` = all parameters
   (SPOS's), ``init`` = untrained.
4. Score the K subnets with every requested indicator ``name@supernet`` (``bn@bn``, ``bn@bnall``, ``bn@all`` -- the
   BN indicator read from the *all-parameters* supernet --, ``spos-acc@all``, ``naswot@init``, ...; ``flops`` needs
   no supernet; :mod:`bnnas.trust.studies.indicator_scoring`) and report Kendall tau / Spearman rho against the ground
   truth with scipy p-values and bootstrap 95 % CIs (subnets resampled; :mod:`bnnas.trust.rank_stats`), each
   indicator's cost (supernet epochs and seconds, scoring seconds), and -- with ``proxy.repeats >= 2`` -- the ground
   truth's own seed-to-seed tau / rho, which bounds what any indicator can reach. The report:
   :mod:`bnnas.trust.studies.correlation.correlation_report`. The study's settings: :class:`StudyConfig`
   (:mod:`bnnas.trust.studies.study_config`).

Data: the SPOS accuracy indicator needs held-out *training* images; the ground truth is measured on the val split.
The two never overlap here (:func:`bnnas.trust.studies.study_data.study_data` carves the indicator's held-out set out
of the training split), which :func:`bnnas.data.build_classification_data`'s digits defaults do not guarantee on their
own.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from bnnas.core.space import SearchSpace
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.training.distributed import DistInfo
from bnnas.trust.studies.correlation.correlation_report import ci_str, write_study_outputs
from bnnas.trust.studies.indicator_scoring import parse_indicator_spec, score_indicator
from bnnas.trust.rank_stats import bootstrap_ci, correlation_report, seed_agreement
from bnnas.trust.studies.correlation.study_sampling import stratified_sample
from bnnas.trust.studies.study_config import StudyConfig
from bnnas.trust.studies.study_supernets import obtain_supernets, ranking_stability
from bnnas.trust.studies.correlation.study_training import train_subnets

log = logging.getLogger("bnnas")

FORMAT = "bnnas.correlation/1"
def _score_all(wanted: list[tuple[str, str | None]], supernets: dict, space: SearchSpace, pop: np.ndarray,
               acc: np.ndarray, data: ClassificationData, device: torch.device, cfg: StudyConfig) -> dict:
    """Every requested indicator's scores of ``pop``, with tau / rho against ``acc``, their CIs and its cost."""
    indicators = {}
    for spec, (name, sup) in zip(cfg.indicators, wanted):
        model, info = supernets[sup] if sup else (None, None)
        res = score_indicator(name, model, space, pop, data, device, cfg)
        res.update(correlation_report(res["scores"], acc))
        res.update(bootstrap_ci([(res["scores"], acc)], cfg.bootstrap_resamples, seed=cfg.seed))
        res["supernet"] = sup
        res["supernet_epochs"] = info["epochs"] if info else 0
        res["supernet_seconds"] = info["seconds"] if info else 0.0
        indicators[spec] = res
        log.info("%-14s tau %+.3f %s  rho %+.3f %s  (score %.2fs)", spec, res["kendall_tau"],
                 ci_str(res["kendall_tau_ci"]), res["spearman_rho"], ci_str(res["spearman_rho_ci"]),
                 res["score_seconds"])
    return indicators


def _ground_truth(cfg: StudyConfig, data: ClassificationData, subnets: list[dict], seconds: float) -> dict:
    """The result document's account of the ground truth, with its seed-to-seed agreement."""
    return {"what": "top-1 on the val split after from-scratch proxy training",
            "proxy": cfg.proxy.to_dict(), "train_images": len(data.train), "val_images": len(data.val),
            "seconds": seconds,
            "seed_agreement": seed_agreement([s.get("acc_runs", [s["acc"]]) for s in subnets],
                                             cfg.bootstrap_resamples, seed=cfg.seed)}


def run_study(space: SearchSpace, data: ClassificationData, cfg: StudyConfig, work_dir: Path,
              device: torch.device, dist: DistInfo = DistInfo(), quiet: bool = True) -> dict | None:
    """The whole study; returns the result document on rank 0 (None elsewhere) and writes it to ``work_dir``."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    wanted = [parse_indicator_spec(s) for s in cfg.indicators]
    if not wanted:
        raise BNNASError("no indicator to measure")
    pop = stratified_sample(space, cfg.k, cfg.seed, max_flops=cfg.max_flops)

    t0 = time.perf_counter()
    subnets = train_subnets(space, pop, data, cfg.proxy, device, dist, work_dir / "subnet_results.jsonl")
    t_subnets = time.perf_counter() - t0

    supernets = obtain_supernets(space, data, cfg, {sup for _, sup in wanted if sup}, work_dir, device, dist, quiet)
    if not dist.is_main:
        return None

    acc = np.array([s["acc"] for s in subnets])
    flops = np.array([s["flops_m"] for s in subnets])
    indicators = _score_all(wanted, supernets, space, pop, acc, data, device, cfg)
    doc = {
        "format": FORMAT, "space": space.name, "data": data.name, "k": cfg.k, "seed": cfg.seed,
        "world_size": dist.world_size, "device": str(device),
        "ground_truth": _ground_truth(cfg, data, subnets, t_subnets),
        "spos_heldout_images": len(data.heldout) if data.heldout is not None else 0,
        "flops_range_m": [float(flops.min()), float(flops.max())],
        "subnets": subnets,
        "supernets": {k: {kk: vv for kk, vv in info.items() if kk != "history"}
                      | {"ranking": ranking_stability(info["history"])} for k, (_, info) in supernets.items()},
        "indicators": indicators,
        "wall_seconds": time.perf_counter() - t_all,
    }
    doc["files"] = write_study_outputs(doc, work_dir)
    atomic_write_text(work_dir / "correlation.json", json.dumps(doc, indent=2) + "\n")
    return doc
