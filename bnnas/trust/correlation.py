"""Ranking study: how well does each indicator rank subnets on *this* data?

1. Sample K subnets spread over the FLOPs range (one per equal-width FLOPs bin).
2. Train each from scratch on a short proxy schedule (:mod:`bnnas.training.proxy`) -> held-out accuracy (ground truth).
   Under torchrun the K trainings are sharded over the ranks and gathered on rank 0.
3. Train (or reuse) the supernets the indicators read, with :class:`SupernetTrainer`: ``bn`` = BN-only
   (``train_mode='bn'``, the paper; ``--bn-params`` says which BNs train), ``bnall`` = BN-only with every BN
   training (``bn_params='all'``), ``all`` = all parameters (SPOS's), ``init`` = untrained.
4. Score the K subnets with every requested indicator ``name@supernet`` (``bn@bn``, ``bn@bnall``, ``bn@all`` -- the
   BN indicator read from the *all-parameters* supernet --, ``spos-acc@all``, ``naswot@init``, ...; ``flops`` needs
   no supernet) and report Kendall tau / Spearman rho against the ground truth with scipy p-values and bootstrap
   95 % CIs (subnets resampled), each indicator's cost (supernet epochs and seconds, scoring seconds), and -- with
   ``proxy.repeats >= 2`` -- the ground truth's own seed-to-seed tau / rho, which bounds what any indicator can reach.

Data: the SPOS accuracy indicator needs held-out *training* images; the ground truth is measured on the val split.
The two never overlap here (``study_data`` carves the indicator's held-out set out of the training split), which
:func:`bnnas.data.build_classification_data`'s digits defaults do not guarantee on their own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from bnnas.core.arch import Arch
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.data import ClassificationData, holdout_split
from bnnas.training.distributed import DistInfo
from bnnas.trust.early_bird import consecutive_similarity, settle_epoch
from bnnas.errors import BNNASError
from bnnas.core.flops import flops_table
from bnnas.indicators.bn import ScoreTable
from bnnas.indicators.registry import BASELINES, as_scorer, build_indicator, known_indicators
from bnnas.training.proxy import ProxyConfig, train_from_scratch
from bnnas.trust.rank_stats import correlation_report, kendall_tau, spearman_rho
from bnnas.core.space import SearchSpace
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, load_supernet, scores_from_record

log = logging.getLogger("bnnas")

FORMAT = "bnnas.correlation/1"
DEFAULT_INDICATORS = ("bn@bn", "bn@bnall", "bn@all", "spos-acc@all", "naswot@init", "synflow@init", "flops")
# BN-only (--bn-params BNs train), BN-only with every BN training, all-parameters, untrained (zero-cost proxies)
SUPERNETS = ("bn", "bnall", "all", "init")
BOOTSTRAP_RESAMPLES = 2000


# -- sampling ---------------------------------------------------------------------------------------------------------
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


# -- data -----------------------------------------------------------------------------------------------------------
def study_data(data: ClassificationData, holdout: int, seed: int = 0,
               limit_train: int | None = None) -> ClassificationData:
    """Hold ``holdout`` training images out (eval transform) for the SPOS accuracy indicator; ``val`` stays the
    ground truth's. Everything else (supernets, from-scratch subnets) trains on the remaining training images, or on
    the first ``limit_train`` of them."""
    train_eval = data.train_eval if data.train_eval is not None else data.train
    n = len(data.train)
    if len(train_eval) != n:
        raise BNNASError("training set and its evaluation-transform copy differ in length; cannot split")
    if not 0 < holdout < n:
        raise BNNASError(f"--holdout must be between 1 and {n - 1} (training images: {n}), got {holdout}")
    keep, held = holdout_split(n, holdout, seed)
    if limit_train is not None:
        if limit_train < 1:
            raise BNNASError(f"--limit-train must be positive, got {limit_train}")
        keep = keep[:limit_train]
    # dataclasses.replace keeps every other field (e.g. a GPU-decode collate_fn / device_transform)
    return dataclasses.replace(data, train=Subset(data.train, keep), heldout=Subset(train_eval, held),
                               train_eval=Subset(train_eval, keep))


# -- supernets -------------------------------------------------------------------------------------------------------
@dataclass
class SupernetSpec:
    mode: str  # bn | all
    epochs: int
    batch_size: int = 32
    lr: float | None = None
    bn_params: str = "last"
    sampler: str = "spos"
    seed: int = 0
    checkpoint: str | None = None  # reuse instead of training
    workers: int = 0
    gamma_init: float = 1.0  # residual candidates' indicator-BN gamma at init (1: paper; 0: small-data recipe)


def obtain_supernet(space: SearchSpace, data: ClassificationData, spec: SupernetSpec, work_dir: Path,
                    device: torch.device, dist: DistInfo = DistInfo(), quiet: bool = True) -> tuple[Supernet, dict]:
    """Train a supernet (resuming from ``work_dir`` if a run is there) or load ``spec.checkpoint``."""
    if spec.checkpoint:
        model, ckpt = load_supernet(spec.checkpoint)
        if model.space.name != space.name or model.space.num_classes != space.num_classes:
            raise BNNASError(f"{spec.checkpoint} is a {model.space.name!r} supernet with {model.space.num_classes} "
                             f"classes, not {space.name!r} with {space.num_classes}")
        cfg = ckpt.get("config", {})
        if cfg.get("train_mode") not in (None, spec.mode):
            raise BNNASError(f"{spec.checkpoint} was trained with train_mode={cfg.get('train_mode')!r}, "
                             f"but it was given as the {spec.mode!r} supernet")
        if spec.mode == "bn" and cfg.get("bn_params") not in (None, spec.bn_params):
            raise BNNASError(f"{spec.checkpoint} trained bn_params={cfg.get('bn_params')!r}, but it was given as a "
                             f"supernet whose {spec.bn_params!r} BNs trained (--supernet-bn: --bn-params; "
                             "--supernet-bnall: all)")
        hist = ckpt.get("history", [])
        return model.to(device), {"source": str(spec.checkpoint), "reused": True, "train_mode": cfg.get("train_mode"),
                                  "epochs": len(hist), "seconds": float(sum(h.get("seconds", 0.0) for h in hist)),
                                  "history": hist}
    cfg = SupernetTrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr, sampler=spec.sampler,
                              train_mode=spec.mode, bn_params=spec.bn_params, seed=spec.seed,
                              workers=spec.workers, gamma_init=spec.gamma_init, world_size=dist.world_size)
    torch.manual_seed(spec.seed)
    model = Supernet(space)
    trainer = SupernetTrainer(model, data, cfg, work_dir, device, dist, show_progress=not quiet)
    result = trainer.fit(trainer.existing_checkpoint())
    hist = [h.to_dict() for h in result.history]
    return model, {"source": str(trainer.ckpt_path), "reused": False, "train_mode": spec.mode, "epochs": len(hist),
                   "seconds": float(sum(h["seconds"] for h in hist)), "config": asdict(cfg), "history": hist}


def obtain_supernets(space: SearchSpace, data: ClassificationData | None, cfg: "StudyConfig", which: set[str],
                     work_dir: Path, device: torch.device, dist: DistInfo = DistInfo(),
                     quiet: bool = True) -> dict[str, tuple[Supernet, dict]]:
    """The supernets named in ``which`` (``bn``, ``bnall``, ``all``, ``init``), trained under ``work_dir`` or
    reused; ``init`` is the seeded untrained one the zero-cost proxies read (no data, no cost)."""
    out: dict[str, tuple[Supernet, dict]] = {}
    for name in sorted(which):
        if name == "init":
            torch.manual_seed(cfg.seed)
            out[name] = (Supernet(space).to(device), {"source": "untrained (seeded init)", "reused": False,
                                                      "train_mode": None, "epochs": 0, "seconds": 0.0, "history": []})
            continue
        if data is None:
            raise BNNASError(f"the @{name} supernet trains on images: pass --data")
        spec = {"bn": cfg.bn, "bnall": cfg.bnall, "all": cfg.all}[name]
        out[name] = obtain_supernet(space, data, spec, work_dir / f"supernet-{name}", device, dist, quiet)
    return out


def ranking_stability(history: list[dict], threshold: float = 0.95, patience: int = 3) -> dict:
    """Early-bird summary of a training history: consecutive-epoch rank similarity and the settle epoch."""
    tables = [scores_from_record(h) for h in history]
    if len(tables) < 2:
        return {"consecutive_similarity": [], "settled_at": None}
    cons = consecutive_similarity(tables)
    return {"consecutive_similarity": [round(float(c), 5) for c in cons],
            "settled_at": settle_epoch(cons, threshold, patience), "threshold": threshold, "patience": patience}


# -- uncertainty -------------------------------------------------------------------------------------------------------
def bootstrap_ci(pairs: list[tuple], n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                 level: float = 0.95) -> dict:
    """Percentile bootstrap CIs of Kendall tau-b and Spearman rho, resampling the K subnets with replacement.

    ``pairs`` is a list of (x, y) vectors over the same K subnets; the statistic is the mean over the pairs (one pair
    for an indicator vs the ground truth, every repeat pair for the ground truth's seed agreement). Resamples in which
    a vector is constant have no tau and are dropped (counted in ``valid_*``). CIs are None when K < 3."""
    from scipy import stats

    xy = [(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for x, y in pairs]
    n = len(xy[0][0])
    info = {"resamples": int(n_resamples), "level": level, "seed": seed,
            "method": "percentile; subnets resampled with replacement"}
    if n < 3 or n_resamples < 1:
        return {"kendall_tau_ci": None, "spearman_rho_ci": None, "bootstrap": info}
    idx = np.random.default_rng([seed, 2024]).integers(0, n, size=(n_resamples, n))
    taus = np.empty(n_resamples)
    rhos = np.empty(n_resamples)
    with warnings.catch_warnings():  # constant resamples warn and give NaN; they are dropped below
        warnings.simplefilter("ignore")
        for b, i in enumerate(idx):
            taus[b] = np.mean([stats.kendalltau(x[i], y[i]).statistic for x, y in xy])
            rhos[b] = np.mean([stats.spearmanr(x[i], y[i]).statistic for x, y in xy])
    q = [50 * (1 - level), 50 * (1 + level)]

    def ci(v: np.ndarray) -> list[float] | None:
        v = v[np.isfinite(v)]
        return [float(c) for c in np.percentile(v, q)] if len(v) else None

    info.update(valid_tau=int(np.isfinite(taus).sum()), valid_rho=int(np.isfinite(rhos).sum()))
    return {"kendall_tau_ci": ci(taus), "spearman_rho_ci": ci(rhos), "bootstrap": info}


def seed_agreement(acc_runs: list[list[float]], n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict | None:
    """How well the ground truth agrees with itself: tau / rho between the accuracies of the K subnets under two
    training seeds, averaged over every pair of repeats, with a bootstrap CI. None with fewer than 2 repeats.

    An indicator cannot rank the subnets more consistently than two runs of the ground truth rank each other, so this
    is (roughly: the ground truth used is the mean of the repeats, a little less noisy than one) the ceiling of
    every indicator's tau."""
    r = min(len(a) for a in acc_runs)
    if r < 2:
        return None
    runs = np.array([a[:r] for a in acc_runs], dtype=np.float64)  # (K, repeats)
    pairs = [(runs[:, a], runs[:, b]) for a in range(r) for b in range(a + 1, r)]
    per_pair = [{"repeats": [a, b], "kendall_tau": kendall_tau(runs[:, a], runs[:, b]),
                 "spearman_rho": spearman_rho(runs[:, a], runs[:, b])} for a in range(r) for b in range(a + 1, r)]
    out = {"repeats": r, "kendall_tau": float(np.mean([p["kendall_tau"] for p in per_pair])),
           "spearman_rho": float(np.mean([p["spearman_rho"] for p in per_pair])), "per_pair": per_pair,
           "mean_seed_std": float(runs.std(axis=1).mean()),  # training noise of one subnet's accuracy
           "spread_of_means": float(np.ptp(runs.mean(axis=1)))}  # the signal: best minus worst subnet
    out.update(bootstrap_ci(pairs, n_resamples, seed))
    return out


def _ci_str(ci) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


# -- the study ---------------------------------------------------------------------------------------------------------
@dataclass
class StudyConfig:
    k: int = 8
    seed: int = 0
    indicators: tuple[str, ...] = DEFAULT_INDICATORS
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    bn: SupernetSpec = field(default_factory=lambda: SupernetSpec("bn", 10))
    bnall: SupernetSpec = field(default_factory=lambda: SupernetSpec("bn", 10, bn_params="all"))
    all: SupernetSpec = field(default_factory=lambda: SupernetSpec("all", 10))
    max_flops: float | None = None
    search_samples: int = 1000  # subnets an indicator-driven search scores (the paper's EA: ~1000)
    spos_calib_batches: int = 10
    spos_max_eval: int | None = None
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES


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


def _result_key(space: SearchSpace, choices, proxy: ProxyConfig, data: ClassificationData) -> str:
    """What a cached from-scratch result depends on (loader workers do not change it)."""
    p = {k: v for k, v in proxy.to_dict().items() if k != "workers"}
    return json.dumps({"space": space.name, "choices": [int(c) for c in choices], "proxy": p, "data": data.name,
                       "train": len(data.train), "val": len(data.val)}, sort_keys=True)


def train_subnets(space: SearchSpace, pop: np.ndarray, data: ClassificationData, proxy: ProxyConfig,
                  device: torch.device, dist: DistInfo, cache_path: Path | None = None) -> list[dict]:
    """From-scratch proxy training of every row of ``pop``; rank r trains rows r, r + W, ... and rank 0 gathers.

    Results are cached (``cache_path``, JSON lines) so an interrupted study resumes without retraining."""
    cache: dict[str, dict] = {}
    if cache_path is not None and cache_path.exists():
        for line in cache_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                cache[rec["key"]] = rec["result"]
    mine = {}
    for i in range(dist.rank, len(pop), dist.world_size):
        key = _result_key(space, pop[i], proxy, data)
        if key in cache:
            mine[i] = cache[key]
            continue
        res = train_from_scratch(Arch(space, tuple(int(c) for c in pop[i])), data.train, data.val, proxy, device,
                                 collate_fn=getattr(data, "collate_fn", None),
                                 device_transform=getattr(data, "device_transform", None))
        log.info("subnet %d/%d  %.2f MFLOPs  acc %.4f  %.1fs", i + 1, len(pop), res["flops_m"], res["acc"],
                 res["seconds"])
        mine[i] = res
        if cache_path is not None:
            line = json.dumps({"key": key, "result": res}) + "\n"
            if dist.enabled:  # one cache per rank: no concurrent appends to one file
                with open(cache_path.with_suffix(f".rank{dist.rank}.jsonl"), "a") as fh:
                    fh.write(line)
            else:
                with open(cache_path, "a") as fh:
                    fh.write(line)
    if dist.enabled:
        import torch.distributed as tdist

        gathered: list[dict] = [None] * dist.world_size  # type: ignore[list-item]
        tdist.all_gather_object(gathered, mine)
        merged: dict[int, dict] = {}
        for part in gathered:
            merged.update(part)
        mine = merged
        if dist.is_main and cache_path is not None:  # fold the per-rank caches into the shared one
            with open(cache_path, "a") as fh:
                for r in range(dist.world_size):
                    p = cache_path.with_suffix(f".rank{r}.jsonl")
                    if p.exists():
                        fh.write(p.read_text())
                        p.unlink()
    return [mine[i] for i in range(len(pop))]


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
                 _ci_str(res["kendall_tau_ci"]), res["spearman_rho"], _ci_str(res["spearman_rho_ci"]),
                 res["score_seconds"])
    doc = {
        "format": FORMAT, "space": space.name, "data": data.name, "k": cfg.k, "seed": cfg.seed,
        "world_size": dist.world_size, "device": str(device),
        "ground_truth": {"what": "top-1 on the val split after from-scratch proxy training",
                         "proxy": cfg.proxy.to_dict(), "train_images": len(data.train), "val_images": len(data.val),
                         "seconds": t_subnets,
                         "seed_agreement": seed_agreement([s.get("acc_runs", [s["acc"]]) for s in subnets],
                                                          cfg.bootstrap_resamples, seed=cfg.seed)},
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


# -- outputs ---------------------------------------------------------------------------------------------------------
def write_study_outputs(doc: dict, work_dir: Path) -> dict:
    from bnnas.outputs.plots import _save, plt

    files = {}
    acc = np.array([s["acc"] for s in doc["subnets"]])
    flops = np.array([s["flops_m"] for s in doc["subnets"]])
    items = list(doc["indicators"].items())
    for spec, res in items:
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
        sc = ax.scatter(res["scores"], 100 * acc, c=flops, cmap="viridis", s=36, edgecolor="k", lw=0.5)
        fig.colorbar(sc, ax=ax, label="MFLOPs")
        ax.set_xlabel(f"{spec} score")
        ax.set_ylabel("proxy-trained val top-1 (%)")
        ax.set_title(f"{spec}: tau {res['kendall_tau']:+.2f}, rho {res['spearman_rho']:+.2f} (K={doc['k']})",
                     fontsize=9)
        fname = f"scatter_{spec.replace('@', '_at_')}.png"
        _save(fig, work_dir / fname)
        files[spec] = fname
    md = [f"# Indicator ranking study: {doc['space']} on {doc['data']}", "",
          f"K = {doc['k']} subnets stratified over {doc['flops_range_m'][0]:.2f}-{doc['flops_range_m'][1]:.2f} MFLOPs, "
          f"each trained from scratch ({_proxy_str(doc['ground_truth']['proxy'])}) and evaluated on "
          f"{doc['ground_truth']['val_images']} val images. Wall time {doc['wall_seconds']:.0f} s.", "",
          "Brackets: bootstrap 95 % CI (K subnets resampled with replacement, percentile); a CI that spans 0 means "
          "this K cannot tell the indicator from a random ranking.", ""]
    sa = doc["ground_truth"].get("seed_agreement")
    if sa:
        md += [f"Ground truth vs itself ({sa['repeats']} training seeds, mean over seed pairs): Kendall tau "
               f"{_fmt(sa['kendall_tau'])} {_ci_str(sa.get('kendall_tau_ci'))}, Spearman rho {_fmt(sa['spearman_rho'])} "
               f"{_ci_str(sa.get('spearman_rho_ci'))}; mean seed std {100 * sa['mean_seed_std']:.2f} points vs "
               f"{100 * sa['spread_of_means']:.2f} points between best and worst subnet. No indicator can be trusted "
               "to rank better than this.", ""]
    else:
        md += ["Ground truth vs itself: not measured (run with --proxy-repeats 2 or more).", ""]
    md += ["| indicator | Kendall tau (p) [95 % CI] | Spearman rho (p) [95 % CI] | supernet epochs | supernet s | "
           "score K s | search-1000 s |", "|---|---|---|---|---|---|---|"]
    for spec, r in items:
        key = next(k for k in r if k.startswith("search_") and k.endswith("_seconds"))
        md.append(f"| {spec} | {_fmt(r['kendall_tau'])} ({_fmt(r['kendall_p'], 2)}) {_ci_str(r.get('kendall_tau_ci'))} "
                  f"| {_fmt(r['spearman_rho'])} ({_fmt(r['spearman_p'], 2)}) {_ci_str(r.get('spearman_rho_ci'))} | "
                  f"{r['supernet_epochs']} | {r['supernet_seconds']:.0f} | "
                  f"{r['score_seconds']:.2f} | {r[key]:.2f}{'' if r['search_seconds_measured'] else ' (est.)'} |")
    md += ["", "Ranking stability of the supernets (early-bird: op-score ranks of consecutive epochs):", ""]
    for k, s in doc["supernets"].items():
        md.append(f"- {k}: {s['epochs']} epochs, ranking settled at epoch {s['ranking']['settled_at']}")
    md += ["", "| # | MFLOPs | val acc | ops |", "|---|---|---|---|"]
    for i, s in enumerate(doc["subnets"]):
        md.append(f"| {i} | {s['flops_m']:.2f} | {100 * s['acc']:.2f} | {' '.join(s['ops'])} |")
    md += [""] + [f"![{k}]({v})" for k, v in files.items()] + [""]
    atomic_write_text(work_dir / "correlation.md", "\n".join(md))
    files["report"] = "correlation.md"
    return files


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def _proxy_str(p: dict) -> str:
    return (f"{p['epochs']} epochs, batch {p['batch_size']}, LR {p['lr']} cosine, "
            f"{p['repeats']} seed{'s' if p['repeats'] > 1 else ''}")


def print_table(doc: dict) -> str:
    """The console summary of a study: tau and rho with their CIs, and the cost of each indicator."""
    from bnnas.outputs.table import format_table

    rows = []
    sa = doc["ground_truth"].get("seed_agreement")
    if sa:
        rows.append((f"(ground truth, {sa['repeats']} seeds)", _fmt(sa["kendall_tau"]), _ci_str(sa.get("kendall_tau_ci")),
                     _fmt(sa["spearman_rho"]), _ci_str(sa.get("spearman_rho_ci")), "-", "-", "-"))
    for spec, r in doc["indicators"].items():
        rows.append((spec, _fmt(r["kendall_tau"]), _ci_str(r.get("kendall_tau_ci")), _fmt(r["spearman_rho"]),
                     _ci_str(r.get("spearman_rho_ci")), str(r["supernet_epochs"]),
                     f"{r['supernet_seconds']:.0f}", f"{r['score_seconds']:.2f}"))
    return format_table(rows, ("indicator", "tau", "tau 95% CI", "rho", "rho 95% CI", "sup. epochs", "sup. s",
                               "score s"))
