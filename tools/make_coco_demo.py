#!/usr/bin/env python
"""Write the built-in COCO-format digits detection set (no download): ``data/coco_demo/`` by default.

    python tools/make_coco_demo.py                       # 400 train / 100 val images at 128 px
    python tools/make_coco_demo.py --out /tmp/c --num-train 16 --num-val 8 --image-size 128 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnas.data.coco_check import check_coco  # noqa: E402
from bnnas.data.coco_synth import SynthConfig, make_coco_demo  # noqa: E402
from bnnas.errors import BNNASError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    d = SynthConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/coco_demo", help="output root (mmdet COCO layout)")
    p.add_argument("--num-train", type=int, default=d.num_train)
    p.add_argument("--num-val", type=int, default=d.num_val)
    p.add_argument("--image-size", type=int, default=d.image_size)
    p.add_argument("--min-object", type=int, default=d.min_object, help="smallest digit side in px")
    p.add_argument("--max-object", type=int, default=d.max_object, help="largest digit side in px")
    p.add_argument("--max-objects", type=int, default=d.max_objects, help="digits per image: 1..N")
    p.add_argument("--seed", type=int, default=d.seed)
    a = p.parse_args(argv)
    try:
        cfg = SynthConfig(a.num_train, a.num_val, a.image_size, a.min_object, a.max_object, a.max_objects, a.seed)
        summary = make_coco_demo(a.out, cfg)
        for split in ("train", "val"):  # the files we just wrote must pass the same check training applies
            check_coco(summary[split]["ann_file"], Path(a.out) / f"{split}2017")
    except BNNASError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("root", "train", "val")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
