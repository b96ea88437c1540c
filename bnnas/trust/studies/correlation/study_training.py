"""The ranking study's ground truth: K subnets trained from scratch on the proxy schedule, with a resumable cache.

Under torchrun the K trainings are sharded over the ranks and gathered on rank 0; every finished training is appended
to a JSON-lines cache, so an interrupted study resumes without retraining.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from bnnas.core.arch import Arch
from bnnas.core.space import SearchSpace
from bnnas.data import ClassificationData
from bnnas.training.distributed import DistInfo
from bnnas.training.proxy import ProxyConfig, train_from_scratch

log = logging.getLogger("bnnas")


def _result_key(space: SearchSpace, choices, proxy: ProxyConfig, data: ClassificationData) -> str:
    """What a cached from-scratch result depends on (loader workers do not change it)."""
    p = {k: v for k, v in proxy.to_dict().items() if k != "workers"}
    return json.dumps({"space": space.name, "choices": [int(c) for c in choices], "proxy": p, "data": data.name,
                       "train": len(data.train), "val": len(data.val)}, sort_keys=True)


def _read_cache(cache_path: Path | None) -> dict[str, dict]:
    """key -> result of every training the cache holds (empty without a cache file)."""
    cache: dict[str, dict] = {}
    if cache_path is not None and cache_path.exists():
        for line in cache_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                cache[rec["key"]] = rec["result"]
    return cache


def _append_cache(cache_path: Path, key: str, res: dict, dist: DistInfo) -> None:
    line = json.dumps({"key": key, "result": res}) + "\n"
    if dist.enabled:  # one cache per rank: no concurrent appends to one file
        with open(cache_path.with_suffix(f".rank{dist.rank}.jsonl"), "a") as fh:
            fh.write(line)
    else:
        with open(cache_path, "a") as fh:
            fh.write(line)


def _gather(mine: dict[int, dict], dist: DistInfo, cache_path: Path | None) -> dict[int, dict]:
    """Every rank's results on every rank; rank 0 folds the per-rank caches into the shared one."""
    import torch.distributed as tdist

    gathered: list[dict] = [None] * dist.world_size  # type: ignore[list-item]
    tdist.all_gather_object(gathered, mine)
    merged: dict[int, dict] = {}
    for part in gathered:
        merged.update(part)
    if dist.is_main and cache_path is not None:  # fold the per-rank caches into the shared one
        with open(cache_path, "a") as fh:
            for r in range(dist.world_size):
                p = cache_path.with_suffix(f".rank{r}.jsonl")
                if p.exists():
                    fh.write(p.read_text())
                    p.unlink()
    return merged


def train_subnets(space: SearchSpace, pop: np.ndarray, data: ClassificationData, proxy: ProxyConfig,
                  device: torch.device, dist: DistInfo, cache_path: Path | None = None) -> list[dict]:
    """From-scratch proxy training of every row of ``pop``; rank r trains rows r, r + W, ... and rank 0 gathers.

    Results are cached (``cache_path``, JSON lines) so an interrupted study resumes without retraining."""
    cache = _read_cache(cache_path)
    mine = {}
    for i in range(dist.rank, len(pop), dist.world_size):
        key = _result_key(space, pop[i], proxy, data)
        if key in cache:
            mine[i] = cache[key]
            continue
        res = train_from_scratch(Arch(space, tuple(int(c) for c in pop[i])), data, proxy, device)
        log.info("subnet %d/%d  %.2f MFLOPs  acc %.4f  %.1fs", i + 1, len(pop), res["flops_m"], res["acc"],
                 res["seconds"])
        mine[i] = res
        if cache_path is not None:
            _append_cache(cache_path, key, res, dist)
    if dist.enabled:
        mine = _gather(mine, dist, cache_path)
    return [mine[i] for i in range(len(pop))]
