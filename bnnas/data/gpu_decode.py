"""Optional GPU JPEG decoding for ImageNet-style training, so that the CPU loader is never the bottleneck.

The CPU path (timm transforms on PIL images in DataLoader workers) decodes and crops every image on the CPU: about
2-3k img/s on 16 cores, below what one modern GPU trains a MobileNet-sized supernet at. This path splits the work:

* :class:`JpegBytesDataset` (in the workers) only reads each file's bytes, parses its header for the image size and
  draws the random-resized-crop box and the flip bit. The draws use torch's global RNG, which
  :class:`~bnnas.data.SeededDataset` seeds per (seed, epoch, index), so augmentation stays resumable and independent
  of the worker count, exactly like the CPU path.
* :func:`collate_jpeg` keeps the variable-length byte strings as a list.
* :class:`GpuJpegAugment` (in the training process) decodes the whole batch with nvJPEG
  (``torchvision.io.decode_jpeg(list, device='cuda')``), crops, resizes (bilinear, antialiased like PIL), flips and
  normalises on the device, returning a float batch in channels_last.

``build_classification_data(..., decode='gpu')`` wires these into :class:`~bnnas.data.ClassificationData`
(``collate_fn`` and ``device_transform``), which :class:`~bnnas.training.supernet_trainer.SupernetTrainer` honours. The same
classes run on the CPU (``device='cpu'``: torchvision's libjpeg-turbo decode in the main process), which the
benchmark uses to compare decoders on machines without a GPU.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from bnnas.errors import BNNASError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def rrc_box(height: int, width: int, scale: tuple[float, float] = (0.08, 1.0),
            ratio: tuple[float, float] = (3 / 4, 4 / 3), generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random-resized crop, the algorithm of torchvision's / timm's RandomResizedCrop:
    10 tries of (area fraction ~ U(scale), log aspect ~ U(log ratio)), else the central crop clamped to ``ratio``."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[1])
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class JpegBytesDataset(Dataset):
    """``(path, label)`` samples -> ``(raw bytes as uint8 tensor, [top, left, h, w, flip] int tensor, label)``."""

    def __init__(self, samples: Sequence[tuple[str, int]], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5):
        self.samples = list(samples)
        self.scale, self.ratio, self.hflip = scale, ratio, hflip

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            with open(path, "rb") as f:
                data = f.read()
            width, height = Image.open(io.BytesIO(data)).size  # header only: no pixel decode
        except (OSError, UnidentifiedImageError, ValueError) as e:
            raise BNNASError(f"cannot read image {path}: {e}") from None
        top, left, h, w = rrc_box(height, width, self.scale, self.ratio)
        flip = int(torch.rand(()) < self.hflip)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), torch.tensor([top, left, h, w, flip]), label


def collate_jpeg(batch):
    """-> ``((list of byte tensors, (B, 5) crop/flip params), (B,) labels)``: the trainer's ``(x, y)`` pair."""
    data, params, labels = zip(*batch)
    return (list(data), torch.stack(params)), torch.tensor(labels, dtype=torch.long)


class GpuJpegAugment:
    """Decode + random-resized-crop + flip + normalise a :func:`collate_jpeg` batch on ``device``.

    Images that nvJPEG cannot decode (PNG or CMYK files with a .JPEG name, as ImageNet has a few) fall back to
    torchvision's CPU decoder one by one.
    """

    def __init__(self, size: int = 224, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 channels_last: bool = True):
        self.size, self.channels_last = int(size), channels_last
        self.mean = torch.tensor(mean).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std).view(1, 3, 1, 1) * 255.0

    @staticmethod
    def decode(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg

        try:
            return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            out = []
            for d in data:
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
                except RuntimeError:
                    out.append(decode_image(d, mode=ImageReadMode.RGB).to(device))
            return out

    def __call__(self, batch, device: torch.device | str) -> torch.Tensor:
        data, params = batch
        device = torch.device(device)
        images = self.decode(data, device)
        p = params.tolist()
        crops = []
        for img, (top, left, h, w, _flip) in zip(images, p):
            crop = img[:, top:top + h, left:left + w].unsqueeze(0).float()
            crops.append(F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                       antialias=True))
        x = torch.cat(crops).clamp_(0, 255)  # antialiased bilinear can overshoot; PIL's uint8 output cannot
        flip = params[:, 4].to(device, non_blocking=True).bool()
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        x = (x - self.mean.to(device)) / self.std.to(device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
