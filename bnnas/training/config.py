"""The settings every trainer reads, defined once; each trainer's config changes defaults and adds its own fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from bnnas.training.engine import scaled_lr


@dataclass
class TrainConfig:
    """One training run: schedule, optimizer, clipping, seed and the run's hardware settings."""

    epochs: int = 1
    batch_size: int = 64  # per process
    lr: float | None = None  # peak LR; None = LR_PER_1024 x global batch / 1024, at least LR_FLOOR
    warmup_epochs: float | None = None  # None = min(5, 10% of epochs), linear from WARMUP_START x peak
    schedule: str = "cosine"  # cosine | linear, per iteration, to min_lr
    min_lr: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 4e-5  # conv/FC weights only
    label_smoothing: float = 0.0
    grad_clip_norm: float = 0.0  # clip the global L2 norm of the gradients at this (0 = off)
    grad_clip_value: float = 0.0  # clip every gradient element to [-v, v] (0 = off)
    seed: int = 0
    workers: int = 0
    world_size: int = 1  # processes training together (the global batch is batch_size x world_size)
    amp: bool = True  # bf16 autocast on GPU only
    channels_last: bool = True  # on GPU
    channels_last_cpu: bool = False  # on CPU: faster depthwise convs, but other float sums than the default layout
    ckpt_every: int = 0  # also checkpoint every N steps (0 = only at epoch ends)

    LR_PER_1024: ClassVar[float] = 0.5
    LR_FLOOR: ClassVar[float] = 0.0
    WARMUP_START: ClassVar[float] = 0.25  # warm-up starts at this fraction of the peak LR (paper: 0.2 -> 0.8)
    # Settings that must match for a resumed run to reproduce the uninterrupted one (the world size is checked too).
    RESUME_KEYS: ClassVar[tuple[str, ...]] = ()

    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else scaled_lr(self.LR_PER_1024, self.batch_size, self.world_size,
                                                             floor=self.LR_FLOOR)

    def warmup(self) -> float:
        """Warm-up length in epochs."""
        return self.warmup_epochs if self.warmup_epochs is not None else min(5.0, 0.1 * self.epochs)

    def warmup_steps(self, steps_per_epoch: int) -> int:
        return int(self.warmup() * steps_per_epoch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
