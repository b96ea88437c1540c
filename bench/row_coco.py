"""Row 6: COCO bbox evaluation time, pycocotools (what mmdet's CocoMetric runs) vs faster-coco-eval, same predictions.

A synthetic ground truth of realistic size (default 500 images x 20 boxes, 80 categories, COCO's small/medium/large
mix) and detector-like predictions (jittered true positives with higher scores, missed objects, false positives with
lower scores, at most 100 per image) are evaluated by both libraries; the timed part is what an evaluation does per
run: load the results, evaluate, accumulate, summarise (the ground-truth index is built once, as CocoMetric does).
"""

from __future__ import annotations

import contextlib
import copy
import io
import time

import numpy as np

from util import RowResult, Stat

NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def synthetic_coco(n_images: int = 500, boxes_per_image: int = 20, n_cats: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    W, H = 640, 480
    images = [{"id": i + 1, "width": W, "height": H, "file_name": f"{i + 1:012d}.jpg"} for i in range(n_images)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cats)]
    anns, dets = [], []
    aid = 0
    for img in images:
        # sides spanning COCO's area ranges: ~40% small (< 32^2), ~35% medium, ~25% large (> 96^2)
        side = np.exp(rng.uniform(np.log(8), np.log(300), boxes_per_image))
        aspect = np.exp(rng.uniform(-0.7, 0.7, boxes_per_image))
        w = np.clip(side * aspect, 2, W - 1)
        h = np.clip(side / aspect, 2, H - 1)
        x = rng.uniform(0, W - w)
        y = rng.uniform(0, H - h)
        c = rng.integers(1, n_cats + 1, boxes_per_image)
        img_dets = []
        for k in range(boxes_per_image):
            aid += 1
            box = [float(x[k]), float(y[k]), float(w[k]), float(h[k])]
            anns.append({"id": aid, "image_id": img["id"], "category_id": int(c[k]), "bbox": box,
                         "area": float(w[k] * h[k]), "iscrowd": 0})
            if rng.random() < 0.85:  # detected, with localisation noise proportional to size
                j = rng.normal(0, 0.1, 4) * np.array([w[k], h[k], w[k], h[k]])
                bw, bh = max(1.0, w[k] + j[2]), max(1.0, h[k] + j[3])
                cat = int(c[k]) if rng.random() < 0.9 else int(rng.integers(1, n_cats + 1))
                img_dets.append((float(x[k] + j[0]), float(y[k] + j[1]), float(bw), float(bh), cat,
                                 float(rng.beta(5, 2))))
        for _ in range(int(rng.integers(10, 60))):  # false positives, lower scores
            bw, bh = np.exp(rng.uniform(np.log(8), np.log(300), 2))
            img_dets.append((float(rng.uniform(0, W - min(bw, W - 1))), float(rng.uniform(0, H - min(bh, H - 1))),
                             float(bw), float(bh), int(rng.integers(1, n_cats + 1)), float(rng.beta(2, 5))))
        img_dets.sort(key=lambda d: -d[5])
        for d in img_dets[:100]:
            dets.append({"image_id": img["id"], "bbox": list(d[:4]), "category_id": d[4], "score": round(d[5], 5)})
    gt = {"images": images, "annotations": anns, "categories": cats}
    return gt, dets


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def run(cfg) -> RowResult:
    from faster_coco_eval import COCO as FCOCO
    from faster_coco_eval import COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = synthetic_coco(cfg.coco_images, 20, 80)
    with _quiet():
        gt_py = COCO()
        gt_py.dataset = copy.deepcopy(gt)
        gt_py.createIndex()
        gt_fast = FCOCO(copy.deepcopy(gt))

    def py_eval():
        with _quiet():
            dt = gt_py.loadRes(copy.deepcopy(dets))
            e = COCOeval(gt_py, dt, "bbox")
            e.evaluate()
            e.accumulate()
            e.summarize()
        return np.asarray(e.stats[:12])

    def fast_eval():
        with _quiet():
            dt = gt_fast.loadRes(copy.deepcopy(dets))
            e = COCOeval_faster(gt_fast, dt, "bbox", print_function=lambda *a, **k: None)
            e.evaluate()
            e.accumulate()
            e.summarize()
        return np.asarray(e.stats[:12])

    t = {"pycocotools": [], "faster": []}
    stats = {}
    for rep in range(1 + cfg.reps_coco):  # first round: warm-up (imports, allocator)
        for name, fn in (("pycocotools", py_eval), ("faster", fast_eval)):
            t0 = time.perf_counter()
            stats[name] = fn()
            if rep:
                t[name].append(time.perf_counter() - t0)
    T = {k: Stat(np.asarray(v)) for k, v in t.items()}
    speed = Stat(np.asarray(t["pycocotools"]) / np.asarray(t["faster"]))
    a, b = np.round(stats["pycocotools"], 3), np.round(stats["faster"], 3)
    identical = bool((a == b).all())
    r = RowResult(6, "COCO bbox evaluation time, CocoMetric/pycocotools vs faster-coco-eval, same predictions",
                  "measure in the same run", "identical 12 numbers (3 decimals), >= 3x faster")
    r.ours = f"{speed.median:.1f}x faster; 12 numbers {'identical' if identical else 'DIFFER'}"
    r.met = identical and speed.median >= 3.0
    r.details += [
        f"{cfg.coco_images} images, {len(gt['annotations'])} GT boxes, {len(dets)} detections, 80 categories",
        f"pycocotools      {T['pycocotools'].fmt(3, 1, ' s')}",
        f"faster-coco-eval {T['faster'].fmt(3, 1, ' s')}",
        "pycocotools  " + " ".join(f"{n}={v:.3f}" for n, v in zip(NAMES, a)),
        "faster-coco  " + " ".join(f"{n}={v:.3f}" for n, v in zip(NAMES, b)),
    ]
    r.data = {"t": {k: v for k, v in t.items()}, "stats_pycocotools": a.tolist(), "stats_faster": b.tolist(),
              "identical": identical}
    return r
