"""The supernets the ranking studies' indicators read: trained (resumable) or reused from a checkpoint, or untrained.

``bn`` = BN-only (``train_mode='bn'``, the paper; ``bn_params`` says which BNs train), ``bnall`` = BN-only with every BN
training, ``all`` = all parameters (SPOS's), ``init`` = untrained (what the zero-cost proxies read).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from bnnas.core.space import SearchSpace
from bnnas.core.supernet import Supernet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.training.distributed import DistInfo
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, load_supernet, scores_from_record
from bnnas.trust.studies.study_config import StudyConfig, SupernetSpec
from bnnas.trust.verdicts.early_bird import consecutive_similarity, settle_epoch

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


def obtain_supernets(space: SearchSpace, data: ClassificationData | None, cfg: StudyConfig, which: set[str],
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
