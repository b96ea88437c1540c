"""Validate a COCO detection annotation file before training on it, failing with one readable line.

mmdet's ``CocoDataset`` silently drops what it cannot use (annotations of categories whose names differ from the
configured classes, degenerate boxes) and only fails on a missing image deep inside a data-loader worker. This check
runs once when the dataset is built and reports the first problem with its location.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bnnas.errors import BNNASError

BOX_TOLERANCE = 1.0  # pixels a box may overhang the image (rounding in annotation tools)


@dataclass
class CocoReport:
    ann_file: str
    num_images: int
    num_annotations: int
    categories: dict[int, str]
    broken: dict[int, str] = field(default_factory=dict)  # annotation id -> reason (tolerated ones)


def box_problem(bbox: object, width: float, height: float) -> str | None:
    """Why a COCO ``[x, y, w, h]`` box is unusable in a ``width x height`` image, or None if it is fine."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return f"bbox {bbox!r} is not [x, y, w, h]"
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return f"bbox {bbox!r} has non-numeric values"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return f"bbox {bbox!r} has non-finite values"
    if w <= 0 or h <= 0:
        return f"bbox {bbox!r} has width or height <= 0"
    t = BOX_TOLERANCE
    if x < -t or y < -t or x + w > width + t or y + h > height + t:
        return f"bbox {bbox!r} lies outside the {width:g}x{height:g} image"
    return None


def check_coco(ann_file: str | os.PathLike, img_dir: str | os.PathLike | None = None,
               classes: Sequence[str] | None = None, max_broken_boxes: int = 0) -> CocoReport:
    """Check ``ann_file`` (and, when ``img_dir`` is given, that every listed image exists there).

    ``classes`` are the names the model is configured with; each must be a category of the file (mmdet would
    otherwise drop that class's boxes without a word). Up to ``max_broken_boxes`` unusable boxes are tolerated and
    returned in ``report.broken`` for the caller to drop (COCO train2017 itself has two zero-height boxes).
    """
    path = Path(ann_file)
    images, anns, cats = _load_lists(path)
    categories = _categories(path, cats, classes)
    sizes = _image_sizes(path, images)
    broken = _broken_boxes(path, anns, sizes, categories, max_broken_boxes)
    if img_dir is not None:
        _check_image_files(path, images, Path(img_dir))
    return CocoReport(str(path), len(images), len(anns), categories, broken)


def _load_lists(path: Path) -> tuple[list, list, list]:
    """The file's images, annotations and categories lists; an error unless it is a COCO JSON object with images
    and categories."""
    if not path.is_file():
        raise BNNASError(f"COCO annotation file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BNNASError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise BNNASError(f"{path}: expected a COCO JSON object, got {type(data).__name__}")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise BNNASError(f"{path}: missing or non-list COCO field(s) {', '.join(missing)}")
    images, anns, cats = data["images"], data["annotations"], data["categories"]
    if not images:
        raise BNNASError(f"{path} lists no images")
    if not cats:
        raise BNNASError(f"{path} lists no categories")
    return images, anns, cats


def _categories(path: Path, cats: list, classes: Sequence[str] | None) -> dict[int, str]:
    """Category id -> name; an error if a configured class is not among the names (mmdet would drop its boxes)."""
    categories: dict[int, str] = {}
    for c in cats:
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise BNNASError(f"{path}: category entry {c!r} needs 'id' and 'name'")
        categories[c["id"]] = str(c["name"])
    if classes is not None:
        absent = [name for name in classes if name not in categories.values()]
        if absent:
            shown = ", ".join(repr(n) for n in absent[:5]) + (" ..." if len(absent) > 5 else "")
            raise BNNASError(
                f"{path}: configured class(es) {shown} are not categories of this file "
                f"(it has {', '.join(sorted(categories.values())[:10])}{' ...' if len(categories) > 10 else ''}); "
                "set metainfo=dict(classes=...) to the file's category names"
            )
    return categories


def _image_sizes(path: Path, images: list) -> dict[object, tuple[float, float]]:
    """Image id -> (width, height); an error for an incomplete entry, a repeated id or a non-positive size."""
    sizes: dict[object, tuple[float, float]] = {}
    for img in images:
        if not isinstance(img, dict) or not all(k in img for k in ("id", "file_name", "width", "height")):
            raise BNNASError(f"{path}: image entry {str(img)[:120]} needs id, file_name, width and height")
        if img["id"] in sizes:
            raise BNNASError(f"{path}: image id {img['id']} is listed twice")
        if not (isinstance(img["width"], (int, float)) and isinstance(img["height"], (int, float))
                and img["width"] > 0 and img["height"] > 0):
            raise BNNASError(f"{path}: image {img['file_name']!r} has size {img['width']}x{img['height']}")
        sizes[img["id"]] = (float(img["width"]), float(img["height"]))
    return sizes


def _broken_boxes(path: Path, anns: list, sizes: dict[object, tuple[float, float]], categories: dict[int, str],
                  max_broken_boxes: int) -> dict[int, str]:
    """Annotation id -> why its box is unusable, at most ``max_broken_boxes`` of them; an error for an incomplete
    annotation or one that names an unlisted image or category."""
    broken: dict[int, str] = {}
    first_broken = None
    for ann in anns:
        if not isinstance(ann, dict) or not all(k in ann for k in ("id", "image_id", "category_id", "bbox")):
            raise BNNASError(f"{path}: annotation {str(ann)[:120]} needs id, image_id, category_id and bbox")
        if ann["image_id"] not in sizes:
            raise BNNASError(f"{path}: annotation {ann['id']} refers to image id {ann['image_id']}, which is not listed")
        if ann["category_id"] not in categories:
            raise BNNASError(
                f"{path}: annotation {ann['id']} has category id {ann['category_id']}, which is not in 'categories'"
            )
        why = box_problem(ann["bbox"], *sizes[ann["image_id"]])
        if why is not None:
            broken[ann["id"]] = why
            if first_broken is None:
                first_broken = f"annotation {ann['id']} (image id {ann['image_id']}): {why}"
    if len(broken) > max_broken_boxes:
        raise BNNASError(
            f"{path}: {len(broken)} broken box(es), e.g. {first_broken}"
            + (f" (tolerating at most {max_broken_boxes})" if max_broken_boxes else "")
        )
    return broken


def _check_image_files(path: Path, images: list, root: Path) -> None:
    """An error unless ``root`` is a directory that holds every image the file lists."""
    if not root.is_dir():
        raise BNNASError(f"image directory not found: {root} (needed by {path})")
    absent_files = [img["file_name"] for img in images if not (root / img["file_name"]).is_file()]
    if absent_files:
        raise BNNASError(
            f"{len(absent_files)} of {len(images)} images listed in {path} are missing from {root}, "
            f"e.g. {absent_files[0]}"
        )
