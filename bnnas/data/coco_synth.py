"""A small COCO-format detection set built from real handwritten digits, for demos and tests without downloads.

Each image is a textured, noisy background with 1..``max_objects`` digits from scikit-learn's bundled
``load_digits`` scans (8x8, 1797 samples written by 43 people) upscaled to random sizes and pasted with an alpha mask.
Boxes are the exact extent of the pasted glyph (mask >= ``MASK_THRESHOLD``), so the annotations are right by
construction. Train and val use disjoint digit samples. The output follows mmdet's COCO layout::

    out/annotations/instances_train2017.json   out/train2017/000000000001.jpg ...
    out/annotations/instances_val2017.json     out/val2017/...

Everything is a function of ``seed`` (numpy's PCG64 generator), so two runs write identical files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bnnas.errors import BNNASError

CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))
"""Category names in id order (category id = digit + 1; COCO ids start at 1)."""
MASK_THRESHOLD = 0.25
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SynthConfig:
    num_train: int = 400
    num_val: int = 100
    image_size: int = 128  # the demo detector's input size, so no resize blurs the digits
    min_object: int = 40  # side of the upscaled 8x8 glyph, before aspect jitter (boxes: ~24-57 px, median ~39)
    max_object: int = 72
    max_objects: int = 3
    seed: int = 0
    jpeg_quality: int = 92

    def validate(self) -> None:
        if self.num_train < 1 or self.num_val < 1:
            raise BNNASError(f"need at least one train and one val image (got {self.num_train}/{self.num_val})")
        if not 8 <= self.min_object <= self.max_object:
            raise BNNASError(f"object sizes must satisfy 8 <= min <= max (got {self.min_object}..{self.max_object})")
        if self.max_object * 1.2 > self.image_size:
            raise BNNASError(
                f"max object size {self.max_object} (x1.2 aspect jitter) does not fit in {self.image_size}px images"
            )
        if self.max_objects < 1:
            raise BNNASError("max_objects must be >= 1")


def _digit_pool(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's digits, split 80/20 into disjoint train/val pools (images scaled to [0, 1])."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    order = np.random.default_rng([seed, 7]).permutation(len(images))
    cut = int(0.8 * len(order))
    return {"train": (images[order[:cut]], digits.target[order[:cut]]),
            "val": (images[order[cut:]], digits.target[order[cut:]])}


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise: a random ``cells x cells`` grid upsampled bicubically to ``size x size``, in [0, 1]."""
    grid = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC)
    return np.clip(np.asarray(img), 0.0, 1.0)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured background: colour gradient + multi-scale value noise + stripes + fine grain, HxWx3 in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(0.15, 0.85, size=3).astype(np.float32)
    tilt = rng.uniform(-0.25, 0.25, size=(2, 3)).astype(np.float32)
    img = base + xx[..., None] * tilt[0] + yy[..., None] * tilt[1]
    for cells, amp in ((4, 0.25), (16, 0.12), (48, 0.06)):
        noise = _smooth_noise(rng, size, cells) - 0.5
        img = img + amp * noise[..., None] * rng.uniform(0.5, 1.0, size=3).astype(np.float32)
    # faint stripes at a random angle: texture a detector must learn to ignore
    angle, freq = rng.uniform(0, np.pi), rng.uniform(8, 30)
    stripes = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    img = img + 0.04 * stripes[..., None]
    img = img + rng.normal(0.0, 0.03, size=img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def _glyph(rng: np.random.Generator, digit: np.ndarray, side: int) -> np.ndarray:
    """Upscale an 8x8 digit to about ``side`` px (aspect jitter +-20%), returning an alpha mask in [0, 1]."""
    aspect = rng.uniform(0.8, 1.2)
    w, h = max(8, int(round(side * aspect))), max(8, side)
    padded = np.pad(digit, 1)  # a zero border so the bicubic ramp fades out inside the glyph canvas
    img = Image.fromarray(padded.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC)
    alpha = np.clip(np.asarray(img), 0.0, 1.0)
    return np.clip((alpha - 0.1) / 0.6, 0.0, 1.0)  # crisper strokes


def render_image(rng: np.random.Generator, cfg: SynthConfig, pool: tuple[np.ndarray, np.ndarray]):
    """One image: ``(uint8 HxWx3, [(x0, y0, x1, y1, digit), ...], object map)``; the object map holds k + 1 where
    object k's mask is >= ``MASK_THRESHOLD`` (0 elsewhere), so each box is exactly its object's mask extent."""
    size = cfg.image_size
    img = _background(rng, size)
    objects = np.zeros((size, size), dtype=np.int32)
    boxes: list[tuple[float, float, float, float, int]] = []
    n = int(rng.integers(1, cfg.max_objects + 1))
    for _ in range(n):
        k = int(rng.integers(len(pool[0])))
        alpha = _glyph(rng, pool[0][k], int(rng.integers(cfg.min_object, cfg.max_object + 1)))
        ys, xs = np.nonzero(alpha >= MASK_THRESHOLD)
        if len(xs) == 0:
            continue
        h, w = alpha.shape
        for _try in range(20):  # place without overlapping earlier digits' boxes
            x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            box = (x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1)
            if all(box[2] <= b[0] or box[0] >= b[2] or box[3] <= b[1] or box[1] >= b[3] for b in boxes):
                break
        else:
            continue
        region = img[y0:y0 + h, x0:x0 + w]
        bg_lum = float(region.mean())
        # ink contrasting with the local background, with a random tint
        ink = np.full(3, 0.05 if bg_lum > 0.5 else 0.95, dtype=np.float32)
        ink = np.clip(ink + rng.uniform(-0.15, 0.15, size=3), 0.0, 1.0)
        a = alpha[..., None] * rng.uniform(0.75, 1.0)
        img[y0:y0 + h, x0:x0 + w] = region * (1 - a) + ink * a
        objects[y0:y0 + h, x0:x0 + w][alpha >= MASK_THRESHOLD] = len(boxes) + 1
        boxes.append((*map(float, box), int(pool[1][k])))
    if not boxes:  # guarantee at least one object per image
        return render_image(rng, cfg, pool)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), boxes, objects


def make_coco_demo(out_dir: str | Path, cfg: SynthConfig | None = None) -> dict:
    """Write the dataset under ``out_dir``; returns a summary (image and box counts per split)."""
    cfg = cfg or SynthConfig()
    cfg.validate()
    out = Path(out_dir)
    pools = _digit_pool(cfg.seed)
    summary: dict = {"root": str(out), "config": asdict(cfg)}
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for si, split in enumerate(SPLITS):
        rng = np.random.default_rng([cfg.seed, si])
        num = cfg.num_train if split == "train" else cfg.num_val
        img_dir = out / f"{split}2017"
        img_dir.mkdir(parents=True, exist_ok=True)
        images, anns = [], []
        for i in range(num):
            arr, boxes, _ = render_image(rng, cfg, pools[split])
            image_id = i + 1
            name = f"{image_id:012d}.jpg"
            Image.fromarray(arr).save(img_dir / name, quality=cfg.jpeg_quality)
            images.append({"id": image_id, "file_name": name, "width": cfg.image_size, "height": cfg.image_size})
            for x0, y0, x1, y1, label in boxes:
                w, h = x1 - x0, y1 - y0
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": label + 1,
                             "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0})
        coco = {
            "info": {"description": f"bnnas synthetic digits ({split}), seed {cfg.seed}", "version": "1.0"},
            "licenses": [],
            "images": images,
            "annotations": anns,
            "categories": [{"id": i + 1, "name": name, "supercategory": "digit"} for i, name in enumerate(CLASSES)],
        }
        ann_path = out / "annotations" / f"instances_{split}2017.json"
        from bnnas.outputs.checkpoint import atomic_write_text

        atomic_write_text(ann_path, json.dumps(coco))
        summary[split] = {"images": len(images), "boxes": len(anns), "ann_file": str(ann_path)}
    return summary
