"""The loop every trainer shares: data and device, the epoch loop with progress and logging, atomic checkpoints,
resume with its settings check, and evaluation. Subclasses say what a step does and what an epoch records.

Exact resume: data order and augmentation come from :class:`SeededDataset`/:class:`ResumableSampler` (functions of
seed, epoch and index), so a run stopped after any checkpoint and resumed continues with the very batches the
uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bnnas.data import ClassificationData, ResumableSampler, SeededDataset
from bnnas.data.fingerprint import data_fingerprint, fingerprint_diff
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_save, load_checkpoint, load_state_strict
from bnnas.outputs.progress import progress_bar
from bnnas.training.config import TrainConfig
from bnnas.training.distributed import DistInfo, barrier
from bnnas.training.engine import autocast, build_optimizer, build_scheduler

log = logging.getLogger("bnnas")
# Set to N, every process of a run SIGKILLs itself right after global step N (and the checkpoint that step writes, if
# any): a crash at a known point, for the tests that resume after one.
KILL_AFTER_STEP_ENV = "BNNAS_KILL_AFTER_STEP"

LOG_EVERY = 50  # steps between progress lines when no bar is drawn (output to a file or a pipe), as timm logs
# What a trainer's checkpoint holds and how; a checkpoint of another format is refused with one line.
STATE_FORMAT = "bnnas.train-state/2"


@dataclass
class EpochRecord:
    """One finished epoch; what a trainer does not measure stays None and is left out of its JSON."""

    epoch: int
    train_loss: float
    train_acc: float
    lr: float  # at the epoch's end
    seconds: float
    val_loss: float | None = None
    top1: float | None = None  # retraining: of the model best.pth would hold (the EMA model with EMA)
    top5: float | None = None
    raw_top1: float | None = None  # with EMA: the raw (non-averaged) model's top-1
    raw_top5: float | None = None
    scores: list | None = None  # supernet: L x N op-score table (None where a layer has fewer choices)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EpochRecord:
        return cls(**d)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0  # training + evaluation time over all sessions
    checkpoint: Path | None = None
    stopped_early_at: int | None = None  # the epoch (or, mid-epoch, the epoch under way) a stop came after
    best: EpochRecord | None = None  # the epoch a best checkpoint holds, for trainers that keep one


def check_state_format(ckpt: dict[str, Any], path: Path) -> None:
    """Refuse, with one line, a training checkpoint written in another format."""
    found = ckpt.get("state_format")
    if found != STATE_FORMAT:
        raise BNNASError(f"{path} is a checkpoint in format {found or 'of an earlier bnnas'}, this version reads "
                         f"{STATE_FORMAT}; train again in another --work-dir")


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = 256
    workers: int = 0
    amp: bool = False
    channels_last: bool = False
    progress: bool = False


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, device: torch.device, opts: EvalOptions = EvalOptions(),
             dist: DistInfo = DistInfo()) -> dict[str, float]:
    """Top-1/top-5 accuracy (fractions) and mean cross-entropy of ``model`` on ``data``; under DDP each process
    evaluates a disjoint shard and the totals are summed."""
    from timm.utils import accuracy

    was_training = model.training
    model.eval()
    shard = list(range(dist.rank, len(data), dist.world_size))
    loader = DataLoader(data, opts.batch_size, sampler=shard, num_workers=opts.workers,
                        pin_memory=device.type == "cuda")
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top-1 hits, top-5 hits, images
    for x, y in progress_bar(loader, opts.progress, desc="eval", leave=False):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, opts.amp):
            logits = model(x)
        logits = logits.float()
        # timm gives percentages of the batch; rounding back to hit counts keeps the totals exact
        hits = [(a.double() * len(y) / 100).round() for a in accuracy(logits, y, topk=(1, 5))]
        loss = nn.functional.cross_entropy(logits, y, reduction="sum").double()
        sums += torch.stack([loss, *hits, torch.tensor(float(len(y)), dtype=torch.float64, device=device)])
    if dist.enabled:
        tdist.all_reduce(sums)
    model.train(was_training)
    loss, top1, top5, n = sums.tolist()
    if n == 0:
        raise BNNASError("evaluation set is empty")
    return {"loss": loss / n, "top1": top1 / n, "top5": top5 / n}


def settings_diff(old_config: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``cfg.RESUME_KEYS`` that differ between a checkpoint's config and ``cfg``, as 'key: old -> new'; the LR is
    compared as the peak LR it resolves to (an unset LR and its default value are the same run)."""
    old_cfg = type(cfg)(**old_config)
    old, new = asdict(old_cfg), asdict(cfg)
    old["lr"], new["lr"] = old_cfg.peak_lr(), cfg.peak_lr()
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in cfg.RESUME_KEYS if k != "world_size" and old[k] != new[k]]


class Trainer:
    """Epoch loop over a seeded, resumable loader with the optimizer, LR schedule and loss ``cfg`` describes.
    Without a ``work_dir`` nothing is written.

    A subclass may override :meth:`_forward_backward` (default: one forward and backward), :meth:`_before_step` /
    :meth:`_after_step`, :meth:`_epoch_extras` (what an epoch records besides the training loss/accuracy) and
    :meth:`_after_epoch` (logging and outputs)."""

    kind: str | None = None  # checkpoint kind
    label = "train"  # progress bars and messages
    ckpt_name = "last.pth"
    find_unused_parameters = False  # DDP: True when a step runs only part of the model

    def __init__(self, model: nn.Module, data: ClassificationData, cfg: TrainConfig, device: torch.device,
                 dist: DistInfo = DistInfo(), work_dir: Path | None = None, show_progress: bool = True):
        if cfg.world_size != dist.world_size:
            raise BNNASError(f"the config says world size {cfg.world_size} but {dist.world_size} processes run")
        self.model, self.data, self.cfg = model, data, cfg
        self.device, self.dist, self.show_progress = device, dist, show_progress
        self.work_dir = Path(work_dir) if work_dir is not None else None
        # on CPU only where a config asks for it: it changes float sums, and CPU results are kept bit-exact
        self.channels_last = cfg.channels_last_cpu if device.type == "cpu" else cfg.channels_last
        model.to(device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.net: nn.Module = model
        if dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters)
        self.dataset = SeededDataset(data.train, cfg.seed)
        self.sampler = ResumableSampler(len(self.dataset), cfg.seed, True, dist.rank, dist.world_size)
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise BNNASError(f"{self.label} batch size {cfg.batch_size} is larger than the {len(self.sampler)} "
                             "training images per process; lower the batch size")
        self.fingerprint = data_fingerprint(data)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[EpochRecord] = []
        self.seconds = 0.0  # training + evaluation time over all sessions
        kill = os.environ.get(KILL_AFTER_STEP_ENV)
        self.kill_after_step = int(kill) if kill else None
        # within-epoch sums (loss x images, correct, images), kept on the device: reading them every step would
        # make the host wait for the GPU instead of queueing the next step
        self._running = torch.zeros(3, dtype=torch.float64, device=device)
        self.optimizer = build_optimizer(model, cfg.peak_lr(), cfg.momentum, cfg.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, cfg.epochs * self.steps_per_epoch,
                                         cfg.warmup_steps(self.steps_per_epoch), cfg.WARMUP_START * cfg.peak_lr(),
                                         cfg.min_lr, cfg.schedule)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    # -- one step ----------------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        self.dataset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * self.cfg.batch_size)
        return DataLoader(self.dataset, self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                          num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda",
                          collate_fn=self.data.collate_fn)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.data.device_transform is not None:  # e.g. raw JPEG bytes -> augmented batch (GPU decode)
            x = self.data.device_transform(x, self.device)
        else:
            x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.scheduler.step_update(self.global_step)
        self._before_step()
        self.optimizer.zero_grad(set_to_none=True)
        loss, correct = self._forward_backward(x, y)
        self._clip_gradients()
        self.optimizer.step()
        self._after_step()
        with torch.no_grad():
            self._running += torch.stack([loss.double() * len(y), correct.double(),
                                          torch.tensor(float(len(y)), dtype=torch.float64, device=self.device)])
        self.global_step += 1
        self.step_in_epoch += 1

    def _forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward of one batch; returns the batch's mean loss and its number of correct predictions
        (both detached)."""
        with autocast(self.device, self.cfg.amp):
            logits = self.net(x)
        loss = self.criterion(logits.float(), y)
        loss.backward()
        return loss.detach(), (logits.detach().argmax(-1) == y).sum()

    def _clip_gradients(self) -> None:
        if self.cfg.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        if self.cfg.grad_clip_value:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.grad_clip_value)

    def _before_step(self) -> None:
        pass

    def _after_step(self) -> None:
        pass

    def _train_stats(self, reduce: bool = True) -> tuple[float, float]:
        """Mean training loss and accuracy of the epoch so far (over all processes if ``reduce``)."""
        run = self._running.clone()
        if reduce and self.dist.enabled:
            tdist.all_reduce(run)
        loss, correct, n = run.tolist()
        n = max(1.0, n)
        return loss / n, correct / n

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # -- the loop ----------------------------------------------------------------------------------------------------
    def fit(self, resume_from: Path | None = None, stop_at_step: int | None = None,
            on_epoch_end: Callable[[Trainer], bool] | None = None) -> TrainResult:
        """Train to ``cfg.epochs``, resuming from ``resume_from`` if given. ``stop_at_step`` ends the session once
        that many steps are done, after writing a checkpoint (what an interruption there leaves behind);
        ``on_epoch_end`` ends it after an epoch where it returns True."""
        if resume_from is not None:
            self.load(resume_from)
        if self.epoch >= self.cfg.epochs:
            log.info("%s: training already finished (%d epochs)", resume_from, self.epoch)
        stopped = self.train_epochs(stop_at_step, on_epoch_end)
        return TrainResult(self.history, self.seconds, self.ckpt_path if self.work_dir is not None else None,
                           self.epoch if stopped else None, self._best_record())

    def existing_checkpoint(self) -> Path | None:
        """This work dir's checkpoint, if an earlier run left one (what ``fit`` resumes from)."""
        return self.ckpt_path if self.work_dir is not None and self.ckpt_path.exists() else None

    def _best_record(self) -> EpochRecord | None:
        """The epoch a best checkpoint holds (None: this trainer keeps none)."""
        return None

    def train_epochs(self, stop_at_step: int | None = None,
                     on_epoch_end: Callable[[Trainer], bool] | None = None) -> bool:
        """Train up to ``cfg.epochs``; True if stopped before (see :meth:`fit`)."""
        self.model.train()
        while self.epoch < self.cfg.epochs:
            if self._train_one_epoch(stop_at_step):
                return True
            stop = bool(on_epoch_end(self)) if on_epoch_end is not None else False
            self._after_epoch(self.history[-1])
            self.save(finished=self.epoch >= self.cfg.epochs or stop)  # after the outputs: "finished" comes last
            barrier(self.dist)
            if stop or (stop_at_step is not None and self.global_step >= stop_at_step):
                return True
        return False

    def _train_one_epoch(self, stop_at_step: int | None) -> bool:
        """The rest of the current epoch, then its record; True if ``stop_at_step`` came mid-epoch (checkpoint
        written)."""
        t_epoch = t0 = time.perf_counter()  # t0: start of the time not yet added to self.seconds
        shown = self.show_progress and self.dist.is_main
        bar = progress_bar(self._loader(), shown, total=self.steps_per_epoch, initial=self.step_in_epoch,
                           desc=f"{self.label} {self.epoch + 1}/{self.cfg.epochs}", leave=False)
        for x, y in bar:
            self._step(*self._to_device(x, y))
            n = self.step_in_epoch
            self._show_progress(bar, shown)
            mid_epoch = n < self.steps_per_epoch
            stop = stop_at_step is not None and self.global_step >= stop_at_step
            if mid_epoch and (stop or (self.cfg.ckpt_every and self.global_step % self.cfg.ckpt_every == 0)):
                self.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                self.save()
            if mid_epoch and stop:
                bar.close()
                return True
            if self.global_step == self.kill_after_step:
                os.kill(os.getpid(), signal.SIGKILL)
        bar.close()
        loss, acc = self._train_stats()
        lr = self.lr
        extras = self._epoch_extras()
        self.seconds += time.perf_counter() - t0
        self.history.append(EpochRecord(self.epoch + 1, loss, acc, lr, time.perf_counter() - t_epoch, **extras))
        self.epoch += 1
        self.step_in_epoch = 0
        self._running.zero_()
        return False

    def _show_progress(self, bar: Any, shown: bool) -> None:
        """The bar's loss and LR every 20 steps, or a log line every LOG_EVERY steps when no bar is drawn (reading
        the sums syncs with the device, so not every step)."""
        n = self.step_in_epoch
        if not bar.disable and (n % 20 == 0 or n == self.steps_per_epoch):
            bar.set_postfix(loss=f"{self._train_stats(reduce=False)[0]:.3f}", lr=f"{self.lr:.3g}")
        elif shown and bar.disable and n % LOG_EVERY == 0 and n < self.steps_per_epoch:
            log.info("%s %d/%d  step %d/%d  loss %.4f  lr %.4g", self.label, self.epoch + 1, self.cfg.epochs,
                     n, self.steps_per_epoch, self._train_stats(reduce=False)[0], self.lr)

    def _epoch_extras(self) -> dict[str, Any]:
        """Fields of the epoch's :class:`EpochRecord` besides loss, accuracy, LR and time (an evaluation, ...)."""
        return {}

    def _after_epoch(self, rec: EpochRecord) -> None:
        """Log the epoch and write its outputs (before the checkpoint that says the epoch is done)."""

    def log_epoch(self, rec: EpochRecord, note: str = "") -> None:
        val = ""
        if rec.top1 is not None:
            raw = f" (raw {100 * rec.raw_top1:.2f}%)" if rec.raw_top1 is not None else ""
            val = f"  val top-1 {100 * rec.top1:.2f}%  top-5 {100 * rec.top5:.2f}%{raw}"
        log.info("epoch %d/%d  loss %.4f  train-acc %.2f%%%s  lr %.4g  %.1fs%s", rec.epoch, self.cfg.epochs,
                 rec.train_loss, 100 * rec.train_acc, val, rec.lr, rec.seconds, note)

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """:func:`evaluate` of ``model`` (default: the trained one) on ``data.val`` with this run's settings."""
        opts = EvalOptions(max(self.cfg.batch_size, 64), self.cfg.workers, self.cfg.amp, self.channels_last,
                           self.show_progress and self.dist.is_main)
        return evaluate(self.model if model is None else model, self.data.val, self.device, opts, self.dist)

    # -- checkpoints -------------------------------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        if self.work_dir is None:
            raise ValueError("this trainer has no work dir")
        return self.work_dir / self.ckpt_name

    def _extra_state(self) -> dict[str, Any]:
        """What a subclass's checkpoint holds besides the shared training state."""
        return {}

    def state(self, finished: bool = False) -> dict[str, Any]:
        return {
            "kind": self.kind, "state_format": STATE_FORMAT, "config": asdict(self.cfg),
            "data_fingerprint": self.fingerprint, "world_size": self.dist.world_size,
            "state_dict": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "running": self._running.detach().cpu().clone(), "history": [h.to_dict() for h in self.history],
            "seconds": self.seconds, "finished": finished, **self._extra_state(),
        }

    def save(self, finished: bool = False) -> None:
        if self.dist.is_main and self.work_dir is not None:
            atomic_save(self.state(finished), self.ckpt_path)

    def _check_identity(self, ckpt: dict[str, Any], path: Path) -> None:
        """Refuse, with one line, a checkpoint of another model (before its settings are compared)."""

    def check_settings(self, ckpt: dict[str, Any], path: Path) -> None:
        """Refuse, with one line, a checkpoint trained with other settings, world size or data."""
        diff = settings_diff(ckpt["config"], self.cfg)
        if ckpt["world_size"] != self.dist.world_size:
            diff.append(f"world size: {ckpt['world_size']} -> {self.dist.world_size}")
        other = fingerprint_diff(ckpt["data_fingerprint"], self.fingerprint)
        if other:
            diff.append(f"data: {other}")
        if diff:
            raise BNNASError(f"{path} was trained on other data or other settings ({'; '.join(diff)}); "
                             "resume with the same ones or use another --work-dir")

    def _load_extra(self, ckpt: dict[str, Any], path: Path) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def load(self, path: Path) -> None:
        """Resume from the checkpoint at ``path``."""
        ckpt = load_checkpoint(path, kind=self.kind)
        self._check_identity(ckpt, path)
        check_state_format(ckpt, path)
        self.check_settings(ckpt, path)
        load_state_strict(self.model, ckpt["state_dict"], str(path))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step_in_epoch, self.global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        self._running = ckpt["running"].clone().to(self._running.device)
        self.history = [EpochRecord.from_dict(h) for h in ckpt["history"]]
        self.seconds = float(ckpt["seconds"])
        self._load_extra(ckpt, path)
        log.info("resumed from %s at epoch %d step %d", path, self.epoch, self.step_in_epoch)
