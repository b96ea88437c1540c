"""Retrain a searched architecture from scratch (stage 3 of one-shot NAS) -- the logic behind ``tools/retrain.py``.

The standalone :class:`~bnnas.core.subnet.SubNet` of an ``arch.json`` (optionally with squeeze-excitation) is trained with
SPEC section 5's recipe: Nesterov SGD (momentum 0.9), linear LR warm-up then cosine (paper text) or linear (official
code) decay to 0, weight decay 4e-5 on conv/FC weights only, label smoothing 0.1, dropout 0.2 before the classifier,
gradient *norm* clipped at 5, 240 epochs at full scale, LR scaled linearly with the global batch (0.5 at 1024, the
official code's value). Optional model EMA (timm's ``ModelEmaV3``).

Every epoch ends with a top-1/top-5 evaluation on the val split and writes ``last.pth`` (everything needed to resume)
and, when top-1 improved, ``best.pth``; both atomically and as ``kind="subnet"`` checkpoints carrying the arch, so
``tools/export_backbone.py`` can turn them into detection backbones.

Exact resume: data order and augmentation come from :class:`SeededDataset`/:class:`ResumableSampler` (functions of
seed, epoch and index), and the model's own randomness (dropout) is reseeded from (seed, global step) before every
step, so a run stopped after any checkpoint and resumed reproduces the uninterrupted run bit for bit on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from bnnas.core.arch import Arch, arch_from_dict
from bnnas.outputs.checkpoint import atomic_save, atomic_write_text, load_checkpoint, load_state_strict
from bnnas.data import ClassificationData, ResumableSampler, SeededDataset
from bnnas.data.fingerprint import data_fingerprint, fingerprint_diff
from bnnas.training.distributed import DistInfo, barrier
from bnnas.training.engine import autocast, build_optimizer, build_scheduler
from bnnas.errors import BNNASError
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import SPACE_TABLES, SearchSpace, build_space
from bnnas.core.subnet import SubNet

log = logging.getLogger("bnnas")

LAST_NAME, BEST_NAME = "last.pth", "best.pth"
METRICS_NAME, CURVE_NAME = "metrics.json", "training_curve.png"
SUBNET_FORMAT = "bnnas.subnet/1"

DIGITS_EPOCHS = 15  # built-in digits: ~100% val top-1 by epoch 10; ~2 CPU-minutes for a 10 MFLOPs arch
FULL_EPOCHS = 240  # SPEC section 5


@dataclass
class RetrainConfig:
    epochs: int = FULL_EPOCHS
    batch_size: int = 128  # per process; 8 GPUs x 128 = the official global batch of 1024
    lr: float | None = None  # peak LR; None = 0.5 * global batch / 1024 (official retraining LR at batch 1024)
    warmup_epochs: float | None = None  # None = min(5, 10% of epochs), linear from 0.25 x peak (paper: 0.2 -> 0.8)
    schedule: str = "cosine"  # cosine (paper text) | linear (official code), per iteration, to min_lr
    min_lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 4e-5  # conv/FC weights only (engine.param_groups)
    label_smoothing: float = 0.1
    dropout: float = 0.2
    grad_clip: float = 5.0  # gradient norm (official retraining code); 0 = off
    se: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    input_size: int = 32
    seed: int = 0
    world_size: int = 1
    workers: int = 0
    amp: bool = True  # bf16 autocast on GPU only
    channels_last: bool = True  # on GPU only
    ckpt_every: int = 0  # also write last.pth every N steps (0 = only at epoch ends)

    # Settings that must match for a resumed run to reproduce the uninterrupted one.
    RESUME_KEYS = ("epochs", "batch_size", "lr", "warmup_epochs", "schedule", "min_lr", "momentum", "weight_decay",
                   "label_smoothing", "dropout", "grad_clip", "se", "ema", "ema_decay", "input_size", "seed",
                   "world_size")

    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else 0.5 * self.batch_size * self.world_size / 1024

    def warmup(self) -> float:
        return self.warmup_epochs if self.warmup_epochs is not None else min(5.0, 0.1 * self.epochs)

    def validate(self) -> None:
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.batch_size >= 1, f"--batch-size must be >= 1 (got {self.batch_size})"),
            (self.lr is None or (math.isfinite(self.lr) and self.lr > 0), f"--lr must be > 0 (got {self.lr})"),
            (self.warmup_epochs is None or 0 <= self.warmup_epochs < self.epochs,
             f"--warmup-epochs must be in [0, epochs) (got {self.warmup_epochs} for {self.epochs} epochs)"),
            (self.schedule in ("cosine", "linear"), f"unknown --schedule {self.schedule!r}: use cosine or linear"),
            (0 <= self.dropout < 1, f"--dropout must be in [0, 1) (got {self.dropout})"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0 (got {self.weight_decay})"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0 (got {self.grad_clip})"),
            (0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1) (got {self.ema_decay})"),
            (self.input_size >= 8, f"--input-size must be >= 8 (got {self.input_size})"),
            (self.workers >= 0, f"--workers must be >= 0 (got {self.workers})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BNNASError(msg)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    top1: float  # of the model that best.pth would hold (the EMA model with --ema)
    top5: float
    lr: float
    seconds: float
    raw_top1: float | None = None  # with --ema: the raw (non-averaged) model's top-1
    raw_top5: float | None = None


@dataclass
class RetrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_top1: float = 0.0
    best_top5: float = 0.0
    best_epoch: int = 0
    seconds: float = 0.0


def space_at_resolution(space: SearchSpace, input_size: int) -> SearchSpace:
    """The same space (widths, strides, classes) with spatial sizes for ``input_size`` -- for FLOPs at that size."""
    if input_size == space.input_size:
        return space
    table = dataclasses.replace(SPACE_TABLES[space.name], input_size=input_size)
    return build_space(space.name, table, space.num_classes)


def model_cost(arch: Arch, se: bool, input_size: int | None = None) -> tuple[float, float]:
    """(FLOPs, params) of ``SubNet(arch, se)`` under SPEC's convention, at ``input_size`` (default: the space's)."""
    space = space_at_resolution(arch.space, input_size or arch.space.input_size)
    return flops_table(space, se).of(arch.choices), params_table(space, se).of(arch.choices)


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, 0x5EED, step]).generate_state(1)[0])


def _accuracy(logits: torch.Tensor, y: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> list[torch.Tensor]:
    """Number of samples whose label is among the top-k predictions, for each k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top.eq(y[:, None])
    return [hit[:, : min(k, kmax)].any(1).sum() for k in ks]


class Retrainer:
    def __init__(self, arch: Arch, data: ClassificationData, cfg: RetrainConfig, work_dir: Path,
                 device: torch.device, dist: DistInfo = DistInfo(), show_progress: bool = True):
        cfg.validate()
        if arch.space.num_classes != data.num_classes:
            raise BNNASError(f"arch has {arch.space.num_classes} classes but the data {data.name!r} has "
                             f"{data.num_classes}; load the arch with num_classes={data.num_classes}")
        self.arch, self.data, self.cfg, self.work_dir = arch, data, cfg, Path(work_dir)
        self.device, self.dist, self.show_progress = device, dist, show_progress
        torch.manual_seed(cfg.seed)
        self.model = SubNet(arch, se=cfg.se, dropout=cfg.dropout)
        self.model.to(device)
        self.channels_last = device.type == "cuda" and cfg.channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if dist.enabled:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3

            # decay warm-up (1 - (1 + step)^-2/3, capped at ema_decay) so short runs get a usable average too
            self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay, use_warmup=True)
        self.optimizer = build_optimizer(self.model, cfg.peak_lr(), cfg.momentum, cfg.weight_decay)
        self.dataset = SeededDataset(data.train, cfg.seed)
        self.sampler = ResumableSampler(len(self.dataset), cfg.seed, True, dist.rank, dist.world_size)
        self.steps_per_epoch = len(self.sampler) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise BNNASError(f"batch size {cfg.batch_size} is larger than the {len(self.sampler)} training images "
                             "per process; lower --batch-size")
        total = cfg.epochs * self.steps_per_epoch
        warmup = int(round(cfg.warmup() * self.steps_per_epoch))
        self.scheduler = _build_scheduler(self.optimizer, cfg.schedule, total, warmup, 0.25 * cfg.peak_lr(),
                                          cfg.min_lr)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.val_criterion = nn.CrossEntropyLoss()
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.history: list[EpochRecord] = []
        self.best_top1, self.best_top5, self.best_epoch = -1.0, 0.0, 0
        self._running = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, samples within the epoch
        self.seconds = 0.0  # training + evaluation time over all sessions

    # -- checkpoints -------------------------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.work_dir / LAST_NAME

    @property
    def best_path(self) -> Path:
        return self.work_dir / BEST_NAME

    def _meta(self) -> dict:
        return {"kind": "subnet", "format": SUBNET_FORMAT, "arch": self.arch.to_dict(), "se": self.cfg.se,
                "num_classes": self.data.num_classes, "input_size": self.cfg.input_size, "data": self.data.name,
                "train_size": len(self.data.train), "data_fingerprint": data_fingerprint(self.data),
                "config": asdict(self.cfg)}

    def state(self, finished: bool = False) -> dict:
        last_top1 = self.history[-1].top1 if self.history else None
        last_top5 = self.history[-1].top5 if self.history else None
        return {
            **self._meta(), "state_dict": self.model.state_dict(),
            "ema_state_dict": self.ema.module.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "running": self._running.clone(), "top1": last_top1, "top5": last_top5,
            "best_top1": self.best_top1, "best_top5": self.best_top5, "best_epoch": self.best_epoch,
            "history": [asdict(h) for h in self.history], "seconds": self.seconds, "finished": finished,
        }

    def save_last(self, finished: bool = False) -> None:
        if self.dist.is_main:
            atomic_save(self.state(finished), self.last_path)

    def save_best(self, rec: EpochRecord) -> None:
        if self.dist.is_main:
            model = self.ema.module if self.ema is not None else self.model
            atomic_save({**self._meta(), "state_dict": model.state_dict(), "epoch": rec.epoch, "top1": rec.top1,
                         "top5": rec.top5, "weights": "ema" if self.ema is not None else "model"}, self.best_path)

    def check_compatible(self, ckpt: dict, path: Path) -> None:
        """Refuse a checkpoint of another arch, class count, SE setting or training recipe, with one line."""
        if "arch" not in ckpt:
            raise BNNASError(f"{path} has no 'arch' entry; it was not written by tools/retrain.py")
        found = arch_from_dict(ckpt["arch"], f"{path} arch")
        if found.space.num_classes != self.arch.space.num_classes:
            raise BNNASError(f"{path} was trained for {found.space.num_classes} classes but the data {self.data.name!r}"
                             f" has {self.arch.space.num_classes}; use another --work-dir")
        if not found.same_as(self.arch):
            raise BNNASError(f"{path} holds another architecture ({found.describe()}) than --arch "
                             f"({self.arch.describe()}); use another --work-dir")
        if bool(ckpt.get("se")) != self.cfg.se:
            raise BNNASError(f"{path} was trained {'with' if ckpt.get('se') else 'without'} --se; "
                             f"pass the same setting or use another --work-dir")
        if "config" not in ckpt or "optimizer" not in ckpt:
            raise BNNASError(f"{path} is a subnet checkpoint without training state (a best.pth?); "
                             f"resume from a {LAST_NAME}")
        mine = asdict(self.cfg)
        diff = [f"{k}: {ckpt['config'].get(k)!r} -> {mine[k]!r}" for k in RetrainConfig.RESUME_KEYS
                if ckpt["config"].get(k) != mine[k]]
        if ckpt.get("data") != self.data.name or ckpt.get("train_size") != len(self.data.train):
            diff.append(f"data: {ckpt.get('data')!r} ({ckpt.get('train_size')} images) -> {self.data.name!r} "
                        f"({len(self.data.train)} images)")
        else:
            other = fingerprint_diff(ckpt.get("data_fingerprint"), data_fingerprint(self.data))
            if other:
                diff.append(f"data: {other}")
        if diff:
            raise BNNASError(f"{path} was trained with other settings ({'; '.join(diff)}); "
                             "resume with the same settings or use another --work-dir")

    def load(self, path: Path, ckpt: dict | None = None) -> None:
        ckpt = load_checkpoint(path, kind="subnet") if ckpt is None else ckpt
        self.check_compatible(ckpt, path)
        load_state_strict(self.model, ckpt["state_dict"], str(path))
        if self.ema is not None:
            load_state_strict(self.ema.module, ckpt["ema_state_dict"], f"{path} (EMA)")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step_in_epoch, self.global_step = ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]
        self._running = ckpt["running"].clone()
        self.history = [EpochRecord(**h) for h in ckpt["history"]]
        self.best_top1, self.best_top5, self.best_epoch = ckpt["best_top1"], ckpt["best_top5"], ckpt["best_epoch"]
        self.seconds = float(ckpt.get("seconds", 0.0))
        log.info("resumed from %s at epoch %d step %d (best top-1 so far %.2f%%)", path, self.epoch,
                 self.step_in_epoch, 100 * max(0.0, self.best_top1))

    # -- training ----------------------------------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        self.dataset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * self.cfg.batch_size)
        return DataLoader(self.dataset, self.cfg.batch_size, sampler=self.sampler, drop_last=True,
                          num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        cfg = self.cfg
        self.scheduler.step_update(self.global_step)
        torch.manual_seed(_step_seed(cfg.seed, self.global_step))  # dropout: a function of the step, not of history
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, cfg.amp):
            logits = self.net(x)
        loss = self.criterion(logits.float(), y)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step + 1)
        with torch.no_grad():
            correct = (logits.detach().argmax(-1) == y).sum()
            self._running += torch.stack([loss.detach().double().cpu() * len(y), correct.double().cpu(),
                                          torch.tensor(float(len(y)), dtype=torch.float64)])
        self.global_step += 1
        self.step_in_epoch += 1

    @torch.no_grad()
    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Top-1/top-5 (fractions) and mean loss on ``data.val``; each process evaluates a disjoint shard."""
        model = self.model if model is None else model
        was_training = model.training
        model.eval()
        n = len(self.data.val)
        shard = list(range(self.dist.rank, n, self.dist.world_size))
        loader = DataLoader(self.data.val, batch_size=max(self.cfg.batch_size, 64), sampler=shard,
                            num_workers=self.cfg.workers, pin_memory=self.device.type == "cuda")
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss sum, top1, top5, count
        for x, y in tqdm(loader, desc="eval", leave=False, dynamic_ncols=True,
                         disable=not (self.show_progress and self.dist.is_main)):
            x, y = self._to_device(x, y)
            with autocast(self.device, self.cfg.amp):
                logits = model(x)
            logits = logits.float()
            c1, c5 = _accuracy(logits, y)
            sums += torch.stack([self.val_criterion(logits, y).double() * len(y), c1.double(), c5.double(),
                                 torch.tensor(float(len(y)), dtype=torch.float64, device=self.device)])
        if self.dist.enabled:
            tdist.all_reduce(sums)
        model.train(was_training)
        loss, c1, c5, cnt = sums.tolist()
        cnt = max(cnt, 1.0)
        return {"loss": loss / cnt, "top1": c1 / cnt, "top5": c5 / cnt}

    def fit(self, resume_from: Path | None = None, ckpt: dict | None = None,
            stop_at_step: int | None = None) -> RetrainResult:
        """Train to ``cfg.epochs`` (resuming from ``resume_from`` if given). ``stop_at_step`` ends the session early
        once that many steps are done, after writing last.pth (what an interruption at that point leaves behind)."""
        if resume_from is not None:
            self.load(resume_from, ckpt)
        self.model.train()
        if self.epoch >= self.cfg.epochs:
            log.info("%s: training already finished (%d epochs)", self.last_path, self.epoch)
        while self.epoch < self.cfg.epochs:
            t_epoch = t0 = time.perf_counter()  # t0: start of the time not yet added to self.seconds
            bar = tqdm(self._loader(), total=self.steps_per_epoch, initial=self.step_in_epoch,
                       desc=f"retrain {self.epoch + 1}/{self.cfg.epochs}", leave=False, dynamic_ncols=True,
                       disable=not (self.show_progress and self.dist.is_main))
            for x, y in bar:
                self._step(*self._to_device(x, y))
                r = self._running
                bar.set_postfix(loss=f"{r[0].item() / max(1.0, r[2].item()):.3f}",
                                lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
                mid_epoch = self.step_in_epoch < self.steps_per_epoch
                stop = stop_at_step is not None and self.global_step >= stop_at_step
                if mid_epoch and (stop or (self.cfg.ckpt_every and self.global_step % self.cfg.ckpt_every == 0)):
                    self.seconds += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save_last()
                if mid_epoch and stop:
                    bar.close()
                    return self._result()
            bar.close()
            run = self._running.to(self.device)
            if self.dist.enabled:
                tdist.all_reduce(run)
            run = run.cpu()
            lr = float(self.optimizer.param_groups[0]["lr"])
            raw = self.evaluate(self.model)
            ev = self.evaluate(self.ema.module) if self.ema is not None else raw
            self.seconds += time.perf_counter() - t0
            rec = EpochRecord(self.epoch + 1, float(run[0] / max(1.0, run[2])), float(run[1] / max(1.0, run[2])),
                              ev["loss"], ev["top1"], ev["top5"], lr, time.perf_counter() - t_epoch,
                              raw["top1"] if self.ema is not None else None,
                              raw["top5"] if self.ema is not None else None)
            self.history.append(rec)
            self.epoch += 1
            self.step_in_epoch = 0
            self._running.zero_()
            improved = rec.top1 > self.best_top1
            if improved:
                self.best_top1, self.best_top5, self.best_epoch = rec.top1, rec.top5, rec.epoch
            log.info("epoch %d/%d  loss %.4f  train-acc %.2f%%  val top-1 %.2f%%  top-5 %.2f%%%s  lr %.4g  %.1fs%s",
                     rec.epoch, self.cfg.epochs, rec.train_loss, 100 * rec.train_acc, 100 * rec.top1, 100 * rec.top5,
                     f" (raw {100 * rec.raw_top1:.2f}%)" if rec.raw_top1 is not None else "", rec.lr, rec.seconds,
                     "  *best*" if improved else "")
            # best.pth first: a crash between the two writes then resumes from the previous last.pth and redoes
            # this epoch, which rewrites the same best.pth
            if improved:
                self.save_best(rec)
            if self.dist.is_main:  # before last.pth, so its "finished" state is the last thing written
                self.write_metrics()
            self.save_last(finished=self.epoch >= self.cfg.epochs)
            barrier(self.dist)
            if stop_at_step is not None and self.global_step >= stop_at_step:
                break
        return self._result()

    def _result(self) -> RetrainResult:
        return RetrainResult(self.history, max(0.0, self.best_top1), self.best_top5, self.best_epoch, self.seconds)

    # -- reports -----------------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        flops, params = model_cost(self.arch, self.cfg.se)
        flops_res, _ = model_cost(self.arch, self.cfg.se, self.cfg.input_size)
        n_params = sum(p.numel() for p in self.model.parameters())
        return {
            "arch": self.arch.ops, "space": self.arch.space.name, "se": self.cfg.se, "ema": self.cfg.ema,
            "data": self.data.name, "num_classes": self.data.num_classes, "input_size": self.cfg.input_size,
            "epochs": self.epoch, "best_top1": max(0.0, self.best_top1), "best_top5": self.best_top5,
            "best_epoch": self.best_epoch, "final_top1": self.history[-1].top1 if self.history else None,
            "params_m": round(params / 1e6, 4), "params_counted_m": round(n_params / 1e6, 4),
            "flops_m": round(flops / 1e6, 3), "flops_m_at_input_size": round(flops_res / 1e6, 3),
            "flops_resolution": self.arch.space.input_size, "seconds": round(self.seconds, 2),
            "peak_lr": self.cfg.peak_lr(), "global_batch": self.cfg.batch_size * self.cfg.world_size,
        }

    def write_metrics(self) -> Path:
        doc = {"config": asdict(self.cfg), "summary": self.summary(), "epochs": [asdict(h) for h in self.history]}
        path = atomic_write_text(self.work_dir / METRICS_NAME, json.dumps(doc, indent=2) + "\n")
        if self.history:
            plot_curve(self.history, self.work_dir / CURVE_NAME, self.cfg.ema)
        return path


def _build_scheduler(optimizer, schedule: str, total_steps: int, warmup_steps: int, warmup_lr: float,
                     min_lr: float):
    if schedule == "cosine":
        return build_scheduler(optimizer, total_steps, warmup_steps, warmup_lr, min_lr)
    from timm.scheduler import PolyLRScheduler

    # power 1 = a straight line from the peak to min_lr (the official code's per-iteration linear decay)
    return PolyLRScheduler(optimizer, t_initial=max(1, total_steps - warmup_steps), power=1.0, lr_min=min_lr,
                           warmup_t=warmup_steps, warmup_lr_init=warmup_lr, warmup_prefix=True, t_in_epochs=False)


def plot_curve(history: list[EpochRecord], path: Path, ema: bool = False) -> Path:
    import bnnas.outputs.plots as plots  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    ep = [h.epoch for h in history]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(ep, [h.train_loss for h in history], "o-", ms=3, label="train loss (smoothed labels)")
    ax.plot(ep, [h.val_loss for h in history], "s-", ms=3, label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=8)
    ax2.plot(ep, [100 * h.top1 for h in history], "o-", ms=3, label="val top-1" + (" (EMA)" if ema else ""))
    ax2.plot(ep, [100 * h.top5 for h in history], "s--", ms=3, label="val top-5" + (" (EMA)" if ema else ""))
    if ema:
        ax2.plot(ep, [100 * (h.raw_top1 or 0) for h in history], "^:", ms=3, label="val top-1 (raw)")
    ax2.plot(ep, [100 * h.train_acc for h in history], "-", color="grey", alpha=0.6, label="train top-1 (augmented)")
    best = max(history, key=lambda h: h.top1)
    ax2.axhline(100 * best.top1, color="k", ls=":", lw=0.8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title(f"best top-1 {100 * best.top1:.2f}% (epoch {best.epoch})")
    ax2.legend(fontsize=8)
    ax3 = ax.twinx()
    ax3.plot(ep, [h.lr for h in history], ":", color="tab:green", lw=1)
    ax3.set_ylabel("LR at epoch end (dotted)", color="tab:green")
    from matplotlib.ticker import MaxNLocator

    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    return plots._save(fig, path)
