"""Classification data: the built-in digits set, or an ImageNet-style folder (``train/<class>/*.JPEG``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Subset

from ..errors import BNNASError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class ClassificationData:
    name: str
    train: Dataset  # training transform
    val: Dataset  # evaluation transform; never seen by the BN indicator
    num_classes: int
    input_size: int
    heldout: Dataset | None = None  # part of *train* held out for the SPOS accuracy indicator (eval transform)
    train_eval: Dataset | None = None  # the training images under the evaluation transform (BN recalibration)
    # decode='gpu': ``train`` yields raw JPEG bytes + crop params; the trainer batches them with ``collate_fn`` and
    # turns each batch into images on its device with ``device_transform(x, device)`` (see data/gpu_decode.py)
    collate_fn: Callable | None = None
    device_transform: Callable | None = None


class DigitsDataset(Dataset):
    """scikit-learn's 1797 real 8x8 handwritten digits, upscaled to ``size`` px, 3 channels, normalised.

    Ships inside the scikit-learn wheel, so the default demo needs no download. Training augmentation is a random
    shift of up to ``size/16`` px (drawn from torch's global RNG, which :class:`SeededDataset` seeds per sample).
    """

    MEAN, STD = 0.30, 0.38

    def __init__(self, split: str = "train", size: int = 32, augment: bool = False, val_fraction: float = 0.2,
                 seed: int = 0):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        idx = np.arange(len(digits.target))
        tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=digits.target)
        pick = {"train": tr, "val": va}[split]
        x = torch.from_numpy(digits.images[pick]).float().div_(16.0).unsqueeze(1)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
        self.images = ((x - self.MEAN) / self.STD).expand(-1, 3, -1, -1).contiguous()
        self.targets = torch.from_numpy(digits.target[pick]).long()
        self.augment = augment
        self.shift = max(1, size // 16)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.augment:
            s = self.shift
            dx, dy = torch.randint(-s, s + 1, (2,)).tolist()
            x = torch.roll(F.pad(x, (s, s, s, s), value=(0 - self.MEAN) / self.STD), (dy, dx), (1, 2))[:, s:-s, s:-s]
        return x, self.targets[i]


def pil_loader(path: str) -> Image.Image:
    """Open an image as RGB, turning any decode failure into a one-line error that names the file."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise BNNASError(f"cannot read image {path}: {e}") from None


def _check_folder(root: Path) -> Path:
    if not root.exists():
        raise BNNASError(f"dataset folder not found: {root}")
    train = root / "train" if (root / "train").is_dir() else None
    if train is None:
        raise BNNASError(f"{root} has no train/ folder (expected ImageNet layout: {root}/train/<class>/<image>)")
    return _check_split(train)


def _check_split(split: Path) -> Path:
    classes = [d for d in sorted(os.scandir(split), key=lambda d: d.name) if d.is_dir()]
    if not classes:
        raise BNNASError(f"{split} has no class folders (expected {split}/<class>/<image>)")
    if not any(f.lower().endswith(IMG_EXTENSIONS) for c in classes for f in os.listdir(c.path)):
        raise BNNASError(f"{split} has class folders but no images ({', '.join(IMG_EXTENSIONS)})")
    return split


def build_classification_data(data: str | os.PathLike | None = None, input_size: int | None = None,
                              holdout: int = 0, seed: int = 0, decode: str = "cpu") -> ClassificationData:
    """``data=None`` gives the built-in digits; otherwise an ImageNet-style folder with ``train/`` (and ``val/``).

    ``decode='gpu'`` (folders only) moves JPEG decoding and the training augmentation of ``train`` to the training
    device (nvJPEG via torchvision; :mod:`bnnas.data.gpu_decode`); evaluation sets keep the CPU path.
    """
    if decode not in ("cpu", "gpu"):
        raise BNNASError(f"unknown decode {decode!r}: use 'cpu' (PIL in loader workers) or 'gpu' (nvJPEG)")
    if data is None or str(data) == "digits":
        size = input_size or 32
        return ClassificationData(
            "digits", DigitsDataset("train", size, augment=True, seed=seed), DigitsDataset("val", size, seed=seed),
            10, size, heldout=DigitsDataset("val", size, seed=seed), train_eval=DigitsDataset("train", size, seed=seed),
        )
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    root = Path(data)
    train_dir = _check_folder(root)
    size = input_size or 224
    train_tf = create_transform(size, is_training=True, scale=(0.08, 1.0), hflip=0.5, color_jitter=None)
    eval_tf = create_transform(size, is_training=False, crop_pct=0.875)
    train_full = ImageFolder(str(train_dir), transform=train_tf, loader=pil_loader, allow_empty=True)
    train_eval_full = ImageFolder(str(train_dir), transform=eval_tf, loader=pil_loader, allow_empty=True)
    n = len(train_full)
    if holdout >= n:
        raise BNNASError(f"--holdout {holdout} leaves no training images ({n} in {train_dir})")
    perm = np.random.default_rng(seed).permutation(n)
    keep, held = np.sort(perm[holdout:]), np.sort(perm[:holdout])
    train = Subset(train_full, keep.tolist()) if holdout else train_full
    collate_fn = device_transform = None
    if decode == "gpu":
        from .gpu_decode import GpuJpegAugment, JpegBytesDataset, collate_jpeg

        raw = JpegBytesDataset(train_full.samples, scale=(0.08, 1.0), hflip=0.5)
        train = Subset(raw, keep.tolist()) if holdout else raw
        collate_fn, device_transform = collate_jpeg, GpuJpegAugment(size)
    heldout = Subset(train_eval_full, held.tolist()) if holdout else None
    val_dir = root / "val"
    val = ImageFolder(str(_check_split(val_dir)), transform=eval_tf, loader=pil_loader) if val_dir.is_dir() else heldout
    if val is None:
        val = Subset(train_eval_full, perm[: min(n, 1000)].tolist())  # no val/: report accuracy on a train sample
    return ClassificationData(root.name, train, val, len(train_full.classes), size, heldout=heldout,
                              train_eval=Subset(train_eval_full, keep.tolist()), collate_fn=collate_fn,
                              device_transform=device_transform)
