"""Classification data: the built-in sets (Fashion-MNIST from its Debian package, scikit-learn's digits), CIFAR-10 in
torchvision's layout (``cifar-10-batches-py``) or an ImageNet-style folder (``train/<class>/*.JPEG``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset, Subset

from bnnas.errors import BNNASError

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


class TensorImages(Dataset):
    """In-memory grey images (N, 1, H, W), already normalised, served as 3 channels.

    Training augmentation is a random horizontal flip (optional) and a random shift of up to ``size/16`` px, drawn
    from torch's global RNG, which :class:`SeededDataset` seeds per sample so resumed runs see the same batches.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, fill: float, augment: bool = False,
                 hflip: bool = False):
        self.images, self.targets, self.fill = images, targets.long(), fill
        self.augment, self.hflip = augment, hflip
        self.shift = max(1, images.shape[-1] // 16)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.augment:
            s = self.shift
            dx, dy, flip = torch.randint(-s, s + 1, (3,)).tolist()
            x = torch.roll(F.pad(x, (s, s, s, s), value=self.fill), (dy, dx), (1, 2))[:, s:-s, s:-s]
            if self.hflip and flip > 0:
                x = x.flip(2)
        return x.expand(3, -1, -1), self.targets[i]


def _to_size(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, h, w) in [0, 1] -> (N, 1, size, size): zero-pad when only a border is missing (28 -> 32 keeps every
    pixel as it is), otherwise bilinear resize."""
    h = x.shape[-1]
    if 0 <= size - h <= 4:
        p = size - h
        return F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2))
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)


def load_digits_split(split: str, size: int = 32, augment: bool = False, val_fraction: float = 0.2,
                      seed: int = 0) -> TensorImages:
    """scikit-learn's 1797 real 8x8 handwritten digits (they ship inside its wheel), upscaled to ``size`` px."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    mean, std = 0.30, 0.38
    digits = load_digits()
    idx = np.arange(len(digits.target))
    tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=digits.target)
    pick = {"train": tr, "val": va}[split]
    x = _to_size(torch.from_numpy(digits.images[pick]).float().div_(16.0).unsqueeze(1), size)
    return TensorImages((x - mean) / std, torch.from_numpy(digits.target[pick]), (0 - mean) / std, augment)


FASHION_MNIST_DIR = Path(os.environ.get("BNNAS_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")


def fashion_mnist_available(root: Path | None = None) -> bool:
    root = FASHION_MNIST_DIR if root is None else Path(root)
    return all((root / f).exists() or (root / f"{f}.gz").exists() for f in FASHION_FILES)


def _fashion_root(src: Path) -> Path:
    """torchvision's FashionMNIST reads ``ROOT/FashionMNIST/raw/<idx files>`` uncompressed; the Debian package ships
    them gzipped, so unpack once into the bnnas cache (via a temp dir + rename: concurrent runs never see a half file)."""
    from torchvision.datasets.utils import extract_archive

    root = Path(os.environ.get("BNNAS_CACHE", Path.home() / ".cache" / "bnnas")) / "datasets"
    raw = root / "FashionMNIST" / "raw"
    missing = [f for f in FASHION_FILES if not (raw / f).exists()]
    if missing:
        raw.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=raw, prefix=".unpack-"))
        try:
            for f in missing:
                if (src / f).exists():
                    shutil.copyfile(src / f, tmp / f)
                else:
                    extract_archive(str(src / f"{f}.gz"), str(tmp))
                os.replace(tmp / f, raw / f)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def load_fashion_mnist_split(split: str, size: int = 32, augment: bool = False,
                             src: Path | None = None) -> TensorImages:
    """Fashion-MNIST (60k train / 10k test, 28x28 grey, 10 classes) through torchvision's reader."""
    from torchvision.datasets import FashionMNIST

    src = FASHION_MNIST_DIR if src is None else Path(src)
    if not fashion_mnist_available(src):
        raise BNNASError(f"Fashion-MNIST not found in {src} (install it with: apt-get install dataset-fashion-mnist)")
    mean, std = 0.286, 0.353
    ds = FashionMNIST(str(_fashion_root(src)), train=split == "train", download=False)
    x = _to_size(ds.data.float().div_(255.0).unsqueeze(1), size)
    return TensorImages((x - mean) / std, ds.targets, (0 - mean) / std, augment, hflip=True)


BUILTIN_DATASETS = ("fashion-mnist", "digits")


def is_builtin(data: str | os.PathLike | None) -> bool:
    """True for the data sets that ship with the install (``None`` picks one of them)."""
    return data is None or str(data) in BUILTIN_DATASETS


def default_builtin() -> str:
    return "fashion-mnist" if fashion_mnist_available() else "digits"


def holdout_split(n: int, holdout: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """(kept, held out) sorted indices of an n-image training split: ``holdout`` images drawn at random under
    ``seed``. Every hold-out (a search's spos-acc set, the ranking study's) uses this one rule, so a seed holds out
    the same images everywhere."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[holdout:]).tolist(), np.sort(perm[:holdout]).tolist()


def _builtin_data(name: str, size: int, holdout: int, seed: int) -> ClassificationData:
    if name == "fashion-mnist":
        train_aug, train_plain, val = (load_fashion_mnist_split("train", size, True),
                                       load_fashion_mnist_split("train", size), load_fashion_mnist_split("val", size))
    else:
        train_aug, train_plain, val = (load_digits_split("train", size, True, seed=seed),
                                       load_digits_split("train", size, seed=seed), load_digits_split("val", size, seed=seed))
    n = len(train_aug)
    if holdout >= n:
        raise BNNASError(f"--holdout {holdout} leaves no training images ({n} in {name})")
    if not holdout:
        return ClassificationData(name, train_aug, val, 10, size, train_eval=train_plain)
    # the spos-acc hold-out comes out of the training split: the val/test split stays unseen by every search
    keep, held = holdout_split(n, holdout, seed)
    return ClassificationData(name, Subset(train_aug, keep), val, 10, size, heldout=Subset(train_plain, held),
                              train_eval=Subset(train_plain, keep))


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


CIFAR10_DIR = "cifar-10-batches-py"
# the normalisation and augmentation NAS-Bench-Macro trained its table with
CIFAR10_MEAN, CIFAR10_STD = (0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)


def cifar10_root(path: str | os.PathLike) -> Path | None:
    """The folder holding ``cifar-10-batches-py`` when ``path`` is it or its parent, else None."""
    p = Path(path)
    if p.name == CIFAR10_DIR and p.is_dir():
        return p.parent
    return p if (p / CIFAR10_DIR).is_dir() else None


def _cifar10_data(root: Path, size: int, holdout: int, seed: int) -> ClassificationData:
    """CIFAR-10 through torchvision's reader (its md5 check included; nothing is downloaded)."""
    from torchvision import transforms as T
    from torchvision.datasets import CIFAR10

    resize = [T.Resize(size)] if size != 32 else []
    norm = [T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)]
    train_tf = T.Compose([*resize, T.RandomCrop(size, padding=size // 8), T.RandomHorizontalFlip(), *norm])
    eval_tf = T.Compose([*resize, *norm])
    try:
        train_full = CIFAR10(str(root), train=True, transform=train_tf, download=False)
        train_plain = CIFAR10(str(root), train=True, transform=eval_tf, download=False)
        val = CIFAR10(str(root), train=False, transform=eval_tf, download=False)
    except RuntimeError as e:
        raise BNNASError(f"{root / CIFAR10_DIR} is not an intact CIFAR-10 python version (torchvision's md5 check "
                         f"says: {e})") from None
    n = len(train_full)
    if holdout >= n:
        raise BNNASError(f"--holdout {holdout} leaves no training images ({n} in CIFAR-10)")
    keep, held = holdout_split(n, holdout, seed)
    return ClassificationData("cifar10", Subset(train_full, keep) if holdout else train_full, val, 10, size,
                              heldout=Subset(train_plain, held) if holdout else None,
                              train_eval=Subset(train_plain, keep) if holdout else train_plain)


def build_classification_data(data: str | os.PathLike | None = None, input_size: int | None = None,
                              holdout: int = 0, seed: int = 0, decode: str = "cpu",
                              limit_train: int | None = None) -> ClassificationData:
    """``data``: ``'fashion-mnist'`` or ``'digits'`` (built in), ``None`` (Fashion-MNIST when installed, else the
    digits), or an ImageNet-style folder with ``train/`` (and ``val/``).

    ``decode='gpu'`` (folders only) moves JPEG decoding and the training augmentation of ``train`` to the training
    device (nvJPEG via torchvision; :mod:`bnnas.data.gpu_decode`); evaluation sets keep the CPU path.
    ``limit_train`` keeps that many training images (the same ones for every seed, so seeds differ in nothing else).
    """
    if limit_train is not None and limit_train < 1:
        raise BNNASError(f"--limit-train must be >= 1, got {limit_train}")
    data = _build(data, input_size, holdout, seed, decode)
    return data if limit_train is None else limit_training(data, limit_train)


def limit_training(data: ClassificationData, n: int, rng_seed: int | list[int] = 0) -> ClassificationData:
    """The first ``n`` of a permutation drawn under ``rng_seed`` of the training images (kept in their order): the
    same images for every training seed, so seeds differ in nothing else. All of them when ``n`` covers the split."""
    if n >= len(data.train):
        return data
    keep = np.sort(np.random.default_rng(rng_seed).permutation(len(data.train))[:n]).tolist()
    return dataclasses.replace(data, train=Subset(data.train, keep),
                               train_eval=None if data.train_eval is None else Subset(data.train_eval, keep))


def _build(data, input_size, holdout, seed, decode) -> ClassificationData:
    if decode not in ("cpu", "gpu"):
        raise BNNASError(f"unknown decode {decode!r}: use 'cpu' (PIL in loader workers) or 'gpu' (nvJPEG)")
    if is_builtin(data):
        return _builtin_data(default_builtin() if data is None else str(data), input_size or 32, holdout, seed)
    cifar = cifar10_root(data)
    if cifar is not None:
        if decode == "gpu":
            raise BNNASError("CIFAR-10 ships as arrays, not JPEGs: use --decode cpu")
        return _cifar10_data(cifar, input_size or 32, holdout, seed)
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
    keep, held = holdout_split(n, holdout, seed)
    train = Subset(train_full, keep) if holdout else train_full
    collate_fn = device_transform = None
    if decode == "gpu":
        from bnnas.data.gpu_decode import GpuJpegAugment, JpegBytesDataset, collate_jpeg

        raw = JpegBytesDataset(train_full.samples, scale=(0.08, 1.0), hflip=0.5)
        train = Subset(raw, keep) if holdout else raw
        collate_fn, device_transform = collate_jpeg, GpuJpegAugment(size)
    heldout = Subset(train_eval_full, held) if holdout else None
    val_dir = root / "val"
    val = ImageFolder(str(_check_split(val_dir)), transform=eval_tf, loader=pil_loader) if val_dir.is_dir() else heldout
    if val is None:
        val = Subset(train_eval_full, holdout_split(n, min(n, 1000), seed)[1])  # no val/: accuracy on a train sample
    return ClassificationData(root.name, train, val, len(train_full.classes), size, heldout=heldout,
                              train_eval=Subset(train_eval_full, keep), collate_fn=collate_fn,
                              device_transform=device_transform)
