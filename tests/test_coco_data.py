"""Built-in COCO-format digits set and the COCO annotation check (no mmdet needed)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bnnas.data.coco_check import box_problem, check_coco
from bnnas.data.coco_synth import CLASSES, MASK_THRESHOLD, SynthConfig, make_coco_demo
from bnnas.errors import BNNASError

ROOT = Path(__file__).resolve().parents[1]
SMALL = SynthConfig(num_train=6, num_val=3, image_size=96, min_object=20, max_object=40, max_objects=3, seed=3)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("coco_small")
    make_coco_demo(out, SMALL)
    return out


def test_layout_and_categories(small_set):
    for split, n in (("train", SMALL.num_train), ("val", SMALL.num_val)):
        d = json.loads((small_set / "annotations" / f"instances_{split}2017.json").read_text())
        assert len(d["images"]) == n
        assert [c["name"] for c in d["categories"]] == list(CLASSES)
        assert [c["id"] for c in d["categories"]] == list(range(1, 11))
        for img in d["images"]:
            with Image.open(small_set / f"{split}2017" / img["file_name"]) as im:
                assert im.format == "JPEG" and im.size == (img["width"], img["height"])
        per_image = {img["id"]: 0 for img in d["images"]}
        for a in d["annotations"]:
            per_image[a["image_id"]] += 1
            assert a["iscrowd"] == 0 and 1 <= a["category_id"] <= 10
            assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3])
        assert all(1 <= k <= SMALL.max_objects for k in per_image.values())
        rep = check_coco(small_set / "annotations" / f"instances_{split}2017.json", small_set / f"{split}2017",
                         classes=CLASSES)
        assert rep.num_images == n and not rep.broken


def test_boxes_are_exact(small_set):
    """Each written box is exactly the extent of its digit's mask, and the written pixels are the rendered ones."""
    from bnnas.data.coco_synth import _digit_pool, render_image

    d = json.loads((small_set / "annotations" / "instances_train2017.json").read_text())
    rng, pool = np.random.default_rng([SMALL.seed, 0]), _digit_pool(SMALL.seed)["train"]
    anns = iter(d["annotations"])
    for img in d["images"]:
        arr, boxes, objects = render_image(rng, SMALL, pool)
        for k, (x0, y0, x1, y1, digit) in enumerate(boxes):
            ys, xs = np.nonzero(objects == k + 1)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
            a = next(anns)
            assert a["image_id"] == img["id"] and a["category_id"] == digit + 1
            assert a["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        jpeg = np.asarray(Image.open(small_set / "train2017" / img["file_name"]), dtype=np.float32)
        assert np.abs(jpeg - arr).mean() < 12  # JPEG (quality 92, 4:2:0) of the rendered, noisy image
        # ink contrasts with the background: mask pixels differ from the pixels just around the box
        ink = arr[objects > 0].astype(np.float32).mean(0)
        ring = arr[np.pad(objects[1:-1, 1:-1] == 0, 1, constant_values=False)].astype(np.float32).mean(0)
        assert np.abs(ink - ring).max() > 40
    assert next(anns, None) is None


def test_deterministic_and_seed_dependent(tmp_path):
    make_coco_demo(tmp_path / "a", SMALL)
    make_coco_demo(tmp_path / "b", SMALL)
    make_coco_demo(tmp_path / "c", SynthConfig(**{**SMALL.__dict__, "seed": 4}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_train_and_val_digits_disjoint():
    from bnnas.data.coco_synth import _digit_pool

    pools = _digit_pool(0)
    train = {p.tobytes() for p in pools["train"][0]}
    val = {p.tobytes() for p in pools["val"][0]}
    assert len(train) > 1000 and len(val) > 300
    assert not train & val
    assert MASK_THRESHOLD > 0


def test_bad_config_rejected(tmp_path):
    with pytest.raises(BNNASError, match="does not fit"):
        make_coco_demo(tmp_path, SynthConfig(image_size=64, max_object=60))


# ------------------------------------------------------------------------------------------- annotation check
def _write(tmp_path: Path, coco: dict, files: list[str] = ()) -> tuple[Path, Path]:
    img_dir = tmp_path / "imgs"
    img_dir.mkdir(exist_ok=True)
    for f in files:
        Image.new("RGB", (50, 40)).save(img_dir / f)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(coco))
    return ann, img_dir


def _coco(bbox=(5, 5, 10, 10), images=True):
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 40}] if images else [],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": list(bbox), "area": 100, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "cat"}],
    }


def test_check_ok(tmp_path):
    ann, img_dir = _write(tmp_path, _coco(), ["a.jpg"])
    rep = check_coco(ann, img_dir, classes=["cat"])
    assert (rep.num_images, rep.num_annotations, rep.categories) == (1, 1, {1: "cat"})


@pytest.mark.parametrize("coco, match", [
    (_coco(images=False), "lists no images"),
    (_coco(bbox=(5, 5, 0, 10)), r"annotation 7 .*width or height <= 0"),
    (_coco(bbox=(5, 5, 10, -3)), "width or height <= 0"),
    (_coco(bbox=(45, 5, 10, 10)), "outside the 50x40 image"),
    (_coco(bbox=(-5, 5, 10, 10)), "outside"),
    (_coco(bbox=(5, 5, float("nan"), 10)), "non-finite"),
    ({"images": [], "annotations": []}, "missing or non-list COCO field"),
])
def test_check_rejects(tmp_path, coco, match):
    ann, img_dir = _write(tmp_path, coco, ["a.jpg"])
    with pytest.raises(BNNASError, match=match) as e:
        check_coco(ann, img_dir)
    assert "\n" not in str(e.value)


def test_check_missing_image_and_classes(tmp_path):
    ann, img_dir = _write(tmp_path, _coco(), [])
    with pytest.raises(BNNASError, match=r"1 of 1 images .* missing .* a\.jpg"):
        check_coco(ann, img_dir)
    check_coco(ann, None)  # file check skipped
    with pytest.raises(BNNASError, match="'dog' are not categories"):
        check_coco(ann, None, classes=["cat", "dog"])
    with pytest.raises(BNNASError, match="not found"):
        check_coco(tmp_path / "nope.json")


def test_check_tolerates_up_to_max_broken(tmp_path):
    ann, img_dir = _write(tmp_path, _coco(bbox=(5, 5, 3, 0)), ["a.jpg"])
    rep = check_coco(ann, img_dir, max_broken_boxes=2)
    assert list(rep.broken) == [7]
    assert box_problem([0, 0, 1, 1], 10, 10) is None
    assert box_problem([0, 0, 10.5, 10], 10, 10) is None  # sub-pixel overhang is tolerated


@pytest.mark.slow
def test_make_coco_demo_tool(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_coco_demo.py"), "--out", str(tmp_path / "d"),
                        "--num-train", "2", "--num-val", "1", "--image-size", "64", "--min-object", "16",
                        "--max-object", "32"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["train"]["images"] == 2
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "make_coco_demo.py"), "--out", str(tmp_path / "e"),
                        "--image-size", "64"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
