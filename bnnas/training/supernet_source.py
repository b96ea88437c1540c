"""Where a search's supernet comes from: a trained checkpoint, or a training run (resumed when its work dir holds
one), optionally stopped once the op ranking settles. ``bnnas search`` and the early-bird comparison of
``bnnas correlate`` both train through it, so the comparison trains exactly what a search trains."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bnnas.core.space import SearchSpace
from bnnas.core.supernet import Supernet
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.training.distributed import DistInfo
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, load_supernet, scores_from_record
from bnnas.training.trainer import TrainResult


class RankingStopper(Protocol):
    """Ends training once the op ranking settles (``bnnas.trust.verdicts.early_bird.EarlyBirdStopper``): told every
    epoch's op-score tables so far, it says whether to stop."""

    def update(self, score_tables: list[np.ndarray]) -> bool: ...


@dataclass(frozen=True)
class SupernetSource:
    """Where a search's supernet comes from: ``checkpoint`` when given, else a training run in ``work_dir``."""

    work_dir: Path
    checkpoint: str | None = None  # reuse this trained supernet instead of training
    no_resume: bool = False  # refuse to resume a run that work_dir already holds
    quiet: bool = False  # no progress bars


def train_or_load_supernet(space: SearchSpace, data: ClassificationData, device: torch.device, dist: DistInfo,
                           source: SupernetSource, cfg: SupernetTrainConfig,
                           stopper: RankingStopper | None = None) -> tuple[Supernet, dict]:
    """Load ``source.checkpoint``, or train (resuming ``source.work_dir``'s run unless ``source.no_resume``) with
    ``cfg``; ``stopper`` ends training once the op ranking settles. Returns the supernet and where it came from, its
    history and time."""
    work_dir, checkpoint, no_resume, quiet = source.work_dir, source.checkpoint, source.no_resume, source.quiet
    if checkpoint:
        model, ckpt = load_supernet(checkpoint)
        if model.space.name != space.name:
            raise BNNASError(f"--supernet {checkpoint} is a {model.space.name!r} supernet, not {space.name!r}")
        return model.to(device), {"source": str(checkpoint), "history": ckpt.get("history", []),
                                  "config": ckpt.get("config", {}), "seconds": 0.0, "stopped_early_at": None}
    torch.manual_seed(cfg.seed)
    model = Supernet(space)
    trainer = SupernetTrainer(model, data, cfg, work_dir, device, dist, show_progress=not quiet)
    if no_resume and trainer.ckpt_path.exists():
        raise BNNASError(f"{trainer.ckpt_path} exists and --no-resume was given; choose another --work-dir")
    cb = (lambda t: stopper.update([scores_from_record(h) for h in t.history])) if stopper else None
    t0 = time.perf_counter()
    if stopper is not None and _stopped_early_before(trainer):
        # an earlier --early-bird run already stopped here: resuming would train one more epoch and move the arch
        result = TrainResult(history=trainer.history, stopped_early_at=trainer.epoch, checkpoint=trainer.ckpt_path)
    else:
        result = trainer.fit(trainer.existing_checkpoint(), on_epoch_end=cb)
    return model, {"source": str(trainer.ckpt_path), "history": [h.to_dict() for h in result.history],
                   "config": asdict(cfg), "seconds": time.perf_counter() - t0,
                   "stopped_early_at": result.stopped_early_at}


def _stopped_early_before(trainer: SupernetTrainer) -> bool:
    """True (and the trainer loaded) if the work dir holds a run that --early-bird finished before its last epoch."""
    from bnnas.outputs.checkpoint import load_checkpoint

    if not trainer.ckpt_path.exists():
        return False
    ckpt = load_checkpoint(trainer.ckpt_path, kind="supernet")
    if not (ckpt.get("finished") and ckpt["epoch"] < trainer.cfg.epochs):
        return False
    trainer.load(trainer.ckpt_path)  # validates the settings, like a resume
    return True
