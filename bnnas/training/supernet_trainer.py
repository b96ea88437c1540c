"""Supernet training: BN-only (the paper) or all parameters (the baseline), SPOS or FairNAS paths, resumable.

``bn`` mode freezes every non-BN parameter at its random init with ``requires_grad=False``, so autograd never
computes a weight gradient for it (only activation gradients flow), which is where BN-NAS's per-epoch saving comes
from. ``bn_params='last'`` (default, as in the official code) trains only the BN the indicator reads -- the last BN
of every candidate op -- and keeps every other BN at gamma=1, beta=0; ``'all'`` trains every BN (the paper's text).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from bnnas.outputs.checkpoint import atomic_save, atomic_write_text, load_checkpoint, load_state_strict
from bnnas.outputs.jsonable import to_jsonable
from bnnas.data import ClassificationData, ResumableSampler, SeededDataset
from bnnas.data.fingerprint import data_fingerprint, fingerprint_diff
from bnnas.training.distributed import DistInfo, all_reduce_mean
from bnnas.training.engine import autocast, build_optimizer, build_scheduler, trainable
from bnnas.errors import BNNASError
from bnnas.indicators.bn import bn_score_table
from bnnas.core.sampling import build_sampler
from bnnas.core.supernet import Supernet

log = logging.getLogger("bnnas")

CKPT_NAME = "supernet.pth"


@dataclass
class SupernetTrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float | None = None  # peak LR; None = 0.8 * batch / 1024 (paper), at least 0.05
    warmup_epochs: float | None = None  # None = min(5, 10% of epochs), from 0.25 x peak (paper: 0.2 -> 0.8)
    momentum: float = 0.9
    weight_decay: float = 4e-5  # conv/FC weights only; matters in 'all' mode
    label_smoothing: float = 0.1
    grad_clip: float = 5.0  # gradient *values* clipped, as in the official code
    sampler: str = "spos"  # spos | fairnas
    train_mode: str = "bn"  # bn | all
    bn_params: str = "last"  # last | all (which BNs train in bn mode)
    # initial gamma of the indicator BN of every candidate that feeds a skip connection (1.0 = the paper); 0 starts
    # every residual branch closed, so all paths begin as one shared network and each op's gamma grows by its use
    gamma_init: float = 1.0
    seed: int = 0
    workers: int = 2
    amp: bool = True  # bf16 autocast on GPU
    ckpt_every: int = 0  # also checkpoint every N steps (0 = only at epoch ends)
    channels_last: bool = True  # on GPU

    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else max(0.05, 0.8 * self.batch_size / 1024)

    def warmup(self) -> float:
        return self.warmup_epochs if self.warmup_epochs is not None else min(5.0, 0.1 * self.epochs)

    # Settings that must match for a resumed run to reproduce the uninterrupted one.
    RESUME_KEYS = ("batch_size", "lr", "warmup_epochs", "sampler", "train_mode", "bn_params", "gamma_init", "seed",
                   "label_smoothing", "momentum", "weight_decay", "grad_clip", "epochs")


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    train_acc: float
    lr: float
    seconds: float
    scores: list  # L x N op-score table (NaN where a layer has fewer choices), as nested lists


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early_at: int | None = None
    checkpoint: Path | None = None


def configure_trainable(model: Supernet, train_mode: str, bn_params: str = "last") -> list[nn.Parameter]:
    """Set ``requires_grad`` per the training mode and return the parameters that train."""
    if train_mode not in ("bn", "all"):
        raise BNNASError(f"unknown train mode {train_mode!r}: use 'bn' (BN only, the paper) or 'all'")
    if bn_params not in ("last", "all"):
        raise BNNASError(f"unknown bn_params {bn_params!r}: use 'last' (official code) or 'all'")
    if train_mode == "all":
        for p in model.parameters():
            p.requires_grad_(True)
        return list(model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    if bn_params == "last":
        bns = [bn for _, _, bn in model.indicator_bns() if bn is not None]
    else:
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
    for bn in bns:
        bn.weight.requires_grad_(True)
        bn.bias.requires_grad_(True)
    return trainable(model.parameters())


@torch.no_grad()
def init_branch_gammas(model: Supernet, gamma: float) -> None:
    """Set gamma of the indicator BN of every candidate of a searchable layer whose output is added to a skip."""
    for li, _ci, bn in model.indicator_bns():
        layer = model.space.layers[li]
        if bn is not None and layer.searchable and layer.stride == 1 and layer.cin == layer.cout:
            bn.weight.fill_(gamma)


def scores_from_record(rec: EpochRecord | dict) -> np.ndarray:
    rows = rec.scores if isinstance(rec, EpochRecord) else rec["scores"]
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


class SupernetTrainer:
    def __init__(self, supernet: Supernet, data: ClassificationData, cfg: SupernetTrainConfig, work_dir: Path,
                 device: torch.device, dist: DistInfo = DistInfo(), show_progress: bool = True):
        self.model, self.data, self.cfg, self.work_dir = supernet, data, cfg, Path(work_dir)
        self.device, self.dist, self.show_progress = device, dist, show_progress
        self.params = configure_trainable(supernet, cfg.train_mode, cfg.bn_params)
        if cfg.gamma_init != 1.0:
            init_branch_gammas(supernet, cfg.gamma_init)
        supernet.to(device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every op sees fixed shapes: let cuDNN pick its fastest kernels
        if device.type == "cuda" and cfg.channels_last:
            supernet.to(memory_format=torch.channels_last)
        self.net: nn.Module = supernet
        if dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                supernet, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        self.optimizer = build_optimizer(supernet, cfg.peak_lr(), cfg.momentum, cfg.weight_decay)
        self.dataset = SeededDataset(data.train, cfg.seed)
        self.data_fingerprint = data_fingerprint(data)
        self.sampler = ResumableSampler(len(self.dataset), cfg.seed, True, dist.rank, dist.world_size)
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise BNNASError(f"batch size {cfg.batch_size} is larger than the {len(self.sampler)} training images per process")
        total = cfg.epochs * self.steps_per_epoch
        self.scheduler = build_scheduler(self.optimizer, total, int(cfg.warmup() * self.steps_per_epoch),
                                         0.25 * cfg.peak_lr())
        self.path_sampler = build_sampler(cfg.sampler, supernet.space, cfg.seed)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[EpochRecord] = []
        # running (loss sum, correct) within the current epoch, kept on the device: reading it every step would
        # synchronise the host with the GPU and stop it queueing the next step's kernels during this one
        self._run_loss = torch.zeros(2, device=device)

    @property
    def ckpt_path(self) -> Path:
        return self.work_dir / CKPT_NAME

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def state(self, finished: bool = False) -> dict:
        return {
            "kind": "supernet", "space": self.model.space.name, "num_classes": self.model.space.num_classes,
            "config": asdict(self.cfg), "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "running": self._run_loss.detach().cpu().clone(), "history": [asdict(h) for h in self.history], "finished": finished,
            "data_fingerprint": self.data_fingerprint, "world_size": self.dist.world_size,
        }

    def save(self, finished: bool = False) -> None:
        if self.dist.is_main:
            atomic_save(self.state(finished), self.ckpt_path)

    def load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, kind="supernet")
        if ckpt["space"] != self.model.space.name or ckpt["num_classes"] != self.model.space.num_classes:
            raise BNNASError(f"{path} is a supernet of space {ckpt['space']!r} ({ckpt['num_classes']} classes), "
                             f"not {self.model.space.name!r} ({self.model.space.num_classes} classes)")
        mine = asdict(self.cfg)
        defaults = asdict(SupernetTrainConfig())  # a key missing from an older checkpoint had its default then
        diff = [f"{k}: {ckpt['config'].get(k, defaults[k])!r} -> {mine[k]!r}" for k in SupernetTrainConfig.RESUME_KEYS
                if ckpt["config"].get(k, defaults[k]) != mine[k]]
        if ckpt.get("world_size", self.dist.world_size) != self.dist.world_size:  # older checkpoints lack it
            diff.append(f"world size: {ckpt['world_size']} -> {self.dist.world_size}")
        if diff:
            raise BNNASError(f"{path} was trained with other settings ({'; '.join(diff)}); "
                             "resume with the same settings or use another --work-dir")
        other_data = fingerprint_diff(ckpt.get("data_fingerprint"), self.data_fingerprint)
        if other_data:
            raise BNNASError(f"{path} was trained on other data ({other_data}); resume with the same --data "
                             "or use another --work-dir")
        load_state_strict(self.model, ckpt["state_dict"], str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step_in_epoch, self.global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        self._run_loss = ckpt["running"].clone().to(self.device)
        self.history = [EpochRecord(**h) for h in ckpt["history"]]
        if self.dist.is_main and path == self.ckpt_path:  # a kill may have left op_scores.json off by one epoch
            self.write_score_history()
        log.info("resumed from %s at epoch %d step %d", path, self.epoch, self.step_in_epoch)

    # -- training ----------------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        self.dataset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * self.cfg.batch_size)
        return DataLoader(self.dataset, self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                          num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False, collate_fn=self.data.collate_fn)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        cfg = self.cfg
        self.scheduler.step_update(self.global_step)
        paths = [p.tolist() for p in self.path_sampler.paths(self.global_step)]
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, cfg.amp):
            if self.dist.enabled or len(paths) == 1:  # DDP: all paths in one forward, one gradient reduction
                logits = self.net(x, paths)
                loss = sum(self.criterion(l.float(), y) for l in logits)
                loss.backward()
            else:  # one device: backward path by path, holding one path's activations at a time
                logits, loss = [], 0.0
                for p in paths:
                    out = self.net(x, p)
                    l = self.criterion(out.float(), y)
                    l.backward()
                    logits.append(out.detach())
                    loss = loss + l.detach()
                logits = torch.stack(logits)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_value_(self.params, cfg.grad_clip)
        self.optimizer.step()
        with torch.no_grad():
            correct = (logits.detach().argmax(-1) == y).float().mean(1).sum() / len(paths)
            self._run_loss += torch.stack([loss.detach().float() / len(paths), correct.float()])  # no host sync
        self.global_step += 1
        self.step_in_epoch += 1

    def fit(self, resume: bool = True, on_epoch_end: Callable[["SupernetTrainer"], bool] | None = None) -> TrainResult:
        """Train until ``cfg.epochs`` (or until ``on_epoch_end`` returns True); resumes from the work dir's checkpoint."""
        if resume and self.ckpt_path.exists():
            self.load(self.ckpt_path)
        result = TrainResult(history=self.history, checkpoint=self.ckpt_path)
        self.model.train()
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            bar = tqdm(self._loader(), total=self.steps_per_epoch, initial=self.step_in_epoch,
                       desc=f"supernet {self.epoch + 1}/{self.cfg.epochs}", leave=False, dynamic_ncols=True,
                       disable=not (self.show_progress and self.dist.is_main))
            for x, y in bar:
                if self.data.device_transform is not None:  # e.g. raw JPEG bytes -> augmented batch (GPU decode)
                    x = self.data.device_transform(x, self.device)
                else:
                    x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if self.device.type == "cuda" and self.cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                self._step(x, y)
                n = max(1, self.step_in_epoch)
                if not bar.disable and (n % 20 == 0 or n == self.steps_per_epoch):  # .item() syncs: not every step
                    bar.set_postfix(loss=f"{self._run_loss[0].item() / n:.3f}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
                if self.cfg.ckpt_every and self.global_step % self.cfg.ckpt_every == 0:
                    self.save()
            bar.close()
            run = all_reduce_mean(self._run_loss.to(self.device), self.dist).cpu() / max(1, self.step_in_epoch)
            scores = bn_score_table(self.model).scores
            rec = EpochRecord(self.epoch + 1, float(run[0]), float(run[1]), float(self.optimizer.param_groups[0]["lr"]),
                              time.perf_counter() - t0, to_jsonable(scores, nan_to_none=True))
            self.history.append(rec)
            self.epoch += 1
            self.step_in_epoch = 0
            self._run_loss.zero_()
            log.info("epoch %d/%d  loss %.4f  train-acc %.3f  lr %.4g  %.1fs", rec.epoch, self.cfg.epochs, rec.loss,
                     rec.train_acc, rec.lr, rec.seconds)
            stop = bool(on_epoch_end(self)) if on_epoch_end is not None else False
            if self.dist.is_main:  # before the checkpoint, so the "finished" state is the last thing written
                self.write_score_history()
            self.save(finished=self.epoch >= self.cfg.epochs or stop)
            if stop:
                result.stopped_early_at = self.epoch
                break
        return result

    def write_score_history(self) -> Path:
        """Per-epoch op scores as JSON (one record per epoch), rewritten atomically each epoch."""
        space = self.model.space
        doc = {"space": space.name, "choices": [list(l.choices) for l in space.layers],
               "epochs": [asdict(h) for h in self.history]}
        return atomic_write_text(self.work_dir / "op_scores.json", json.dumps(doc) + "\n")


def load_supernet(path: str | Path) -> tuple[Supernet, dict]:
    """Rebuild a trained supernet from its checkpoint (for ``--supernet ckpt`` reuse)."""
    from bnnas.core.space import get_space

    ckpt = load_checkpoint(path, kind="supernet")
    model = Supernet(get_space(ckpt["space"], ckpt["num_classes"]))
    load_state_strict(model, ckpt["state_dict"], str(path))
    return model, ckpt
