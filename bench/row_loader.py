"""Row 4: training data pipeline img/s (ImageNet-style JPEG folder, RandomResizedCrop 224 + flip + normalise).

Paths measured on the same generated folder (``--jpeg-dir`` points it at a real one instead):

* ``cpu``: our default -- timm transforms on PIL images in DataLoader workers (``build_classification_data``);
* ``tv-cpu``: the ``decode='gpu'`` data path run on the CPU: workers only read bytes and draw the crop, the main
  process decodes the batch with torchvision (libjpeg-turbo) and crops/resizes/flips/normalises with torch;
* ``gpu``: the same path with nvJPEG batch decoding and the augmentation on the GPU (needs CUDA).

Each is also run with 0 workers (all work in one process) to give the per-core cost, from which the 16-core figure
of the anchor is extrapolated (an estimate, labelled as such).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, RandomSampler

from util import RowResult, Stat


def _image(rng: np.random.Generator, w: int = 500, h: int = 375) -> Image.Image:
    """Multi-scale smooth noise plus grain: JPEG sizes close to natural photos (random pixels would be ~3x larger)."""
    img = np.zeros((h, w, 3), np.float32)
    for cells, amp in ((4, 90), (16, 45), (64, 25)):
        small = (rng.random((cells * h // w + 2, cells + 2, 3)) * 255).astype(np.uint8)
        pad = 2 * w // cells
        up = np.asarray(Image.fromarray(small).resize((w + pad, h + pad), Image.BICUBIC), np.float32) / 255
        img += amp * (up[:h, :w] - 0.5)
    img += rng.normal(0, 14, img.shape)
    return Image.fromarray(np.clip(img + 128, 0, 255).astype(np.uint8))


def make_jpeg_folder(root: Path, n: int, classes: int = 10, seed: int = 0) -> Path:
    """``root/train/<class>/<i>.JPEG``, n images of 500x375 (ImageNet's most common size), quality 90; reused."""
    done = root / f".done-{n}"
    if done.exists():
        return root
    rng = np.random.default_rng(seed)
    for i in range(n):
        d = root / "train" / f"n{i % classes:08d}"
        d.mkdir(parents=True, exist_ok=True)
        w, h = (500, 375) if rng.random() < 0.7 else (375, 500)
        _image(rng, w, h).save(d / f"img_{i:06d}.JPEG", "JPEG", quality=90)
    done.touch()
    return root


def _throughput(loader, batches: int, warm: int, reps: int, post=None) -> np.ndarray:
    """img/s of ``reps`` windows of ``batches`` batches each, after ``warm`` batches (worker start-up)."""
    it = iter(loader)
    out = []
    for _ in range(warm):
        x, _ = next(it)
        if post is not None:
            post(x)
    for _ in range(reps):
        t0, n = time.perf_counter(), 0
        for _ in range(batches):
            x, y = next(it)
            if post is not None:
                x = post(x)
            n += len(y)
        if post is not None and torch.is_tensor(x) and x.is_cuda:
            torch.cuda.synchronize()
        out.append(n / (time.perf_counter() - t0))
    return np.asarray(out)


def _loader(ds, batch: int, workers: int, total: int, collate=None):
    from bnnas.data import SeededDataset

    sampler = RandomSampler(ds, replacement=True, num_samples=total, generator=torch.Generator().manual_seed(0))
    return DataLoader(SeededDataset(ds, 0), batch, sampler=sampler, num_workers=workers, collate_fn=collate,
                      drop_last=True, persistent_workers=False, prefetch_factor=4 if workers else None,
                      pin_memory=torch.cuda.is_available())


def run(cfg, device: torch.device, consumed_ips: float | None, consumed_note: str) -> RowResult:
    from bnnas.data import build_classification_data

    if cfg.jpeg_dir:
        root = Path(cfg.jpeg_dir)
    else:
        root = make_jpeg_folder(Path(tempfile.gettempdir()) / "bnnas-bench-jpegs", cfg.jpeg_images)
    files = [p for p in (root / "train").rglob("*") if p.is_file()]
    mean_kb = np.mean([p.stat().st_size for p in files[:500]]) / 1e3
    B, W = cfg.loader_batch, cfg.workers
    nb, warm, reps = cfg.loader_batches, 2, cfg.reps_loader
    total = (warm + nb * reps + 2) * B
    cpu_data = build_classification_data(root)
    raw_data = build_classification_data(root, decode="gpu")
    aug = raw_data.device_transform
    res: dict[str, np.ndarray] = {}
    res["cpu"] = _throughput(_loader(cpu_data.train, B, W, total), nb, warm, reps)
    res["cpu-1proc"] = _throughput(_loader(cpu_data.train, B, 0, total), max(1, nb // 2), 1, reps)
    cpu = torch.device("cpu")
    res["tv-cpu"] = _throughput(_loader(raw_data.train, B, W, total, raw_data.collate_fn), nb, warm, reps,
                                lambda x: aug(x, cpu))
    res["tv-cpu-1proc"] = _throughput(_loader(raw_data.train, B, 0, total, raw_data.collate_fn), max(1, nb // 2), 1,
                                      reps, lambda x: aug(x, cpu))
    have_cuda = device.type == "cuda" and torch.cuda.is_available()
    if have_cuda:
        res["gpu"] = _throughput(_loader(raw_data.train, B, W, total, raw_data.collate_fn), nb, warm, reps,
                                 lambda x: aug(x, device))
    S = {k: Stat(v) for k, v in res.items()}
    r = RowResult(4, "training data pipeline img/s (JPEG folder, RandomResizedCrop 224) vs what #2 consumes",
                  "CPU decode 16 cores 2-3k img/s", "loader never the bottleneck on one GPU (GPU JPEG decode offered)")
    per_core = S["cpu-1proc"].median
    ours = f"CPU path {S['cpu'].median:.0f} img/s ({W} workers); est. 16 cores {16 * per_core:.0f}"
    if have_cuda:
        ours += f"; GPU decode {S['gpu'].median:.0f} img/s"
    else:
        ours += "; GPU decode: skipped (no CUDA)"
    best = S["gpu"].median if have_cuda else S["cpu"].median
    if consumed_ips:
        ours += f"; best / #2 consumption = {best / consumed_ips:.2f}x"
    r.ours = ours
    r.met = (S["gpu"].median >= consumed_ips) if (have_cuda and consumed_ips) else None
    r.details += [
        f"folder {root} ({len(files)} JPEGs, mean {mean_kb:.0f} KB, 500x375/375x500 q90); batch {B}, "
        f"{W} loader workers, windows of {nb} batches",
        f"cpu (PIL + timm transforms in workers)        {S['cpu'].fmt(0, 1, ' img/s')}",
        f"cpu, one process (per-core cost)               {S['cpu-1proc'].fmt(0, 1, ' img/s')} "
        f"-> x16 cores ~ {16 * per_core:.0f} img/s (estimate)",
        f"bytes + torchvision decode on CPU (main proc)  {S['tv-cpu'].fmt(0, 1, ' img/s')}",
        f"bytes + torchvision decode, one process        {S['tv-cpu-1proc'].fmt(0, 1, ' img/s')}",
        (f"bytes + nvJPEG decode + GPU augment           {S['gpu'].fmt(0, 1, ' img/s')}" if have_cuda
         else "bytes + nvJPEG decode + GPU augment: skipped (no CUDA)"),
        f"#2 consumes {consumed_ips:.0f} img/s ({consumed_note})" if consumed_ips else "#2 not run in this invocation",
    ]
    r.data = {k: v.tolist() for k, v in res.items()} | {"consumed_ips": consumed_ips, "mean_kb": mean_kb}
    return r
