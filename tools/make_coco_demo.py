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


import bnnas.cli.common as cli
from bnnas.data.coco_check import check_coco
from bnnas.data.coco_synth import SPLITS, SynthConfig, make_coco_demo
from bnnas.outputs.workdir import claim_output_dir

MARKER = ".bnnas_coco_demo"  # lets a re-run recognise (and rewrite) a dir this tool made
OWNED = ("annotations", *(f"{s}2017" for s in SPLITS))


def make(a: argparse.Namespace) -> None:
    cfg = SynthConfig(a.num_train, a.num_val, a.image_size, a.min_object, a.max_object, a.max_objects, a.seed)
    cfg.validate()  # before the dir is claimed
    claim_output_dir(Path(a.out), MARKER, OWNED)
    summary = make_coco_demo(a.out, cfg)
    for split in SPLITS:  # the files we just wrote must pass the same check training applies
        check_coco(summary[split]["ann_file"], Path(a.out) / f"{split}2017")
    print(json.dumps({k: summary[k] for k in ("root", "train", "val")}, indent=2))


def main(argv: list[str] | None = None) -> int:
    d = SynthConfig()
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/coco_demo",
                   help="output root (mmdet COCO layout); must be new, empty or made by this tool")
    p.add_argument("--num-train", type=cli.positive_int, default=d.num_train)
    p.add_argument("--num-val", type=cli.positive_int, default=d.num_val)
    p.add_argument("--image-size", type=cli.positive_int, default=d.image_size)
    p.add_argument("--min-object", type=cli.positive_int, default=d.min_object, help="smallest digit side in px")
    p.add_argument("--max-object", type=cli.positive_int, default=d.max_object, help="largest digit side in px")
    p.add_argument("--max-objects", type=cli.positive_int, default=d.max_objects, help="digits per image: 1..N")
    p.add_argument("--seed", type=cli.nonneg_int, default=d.seed)
    cli.add_debug(p)
    return cli.main(p, make, argv)


if __name__ == "__main__":
    sys.exit(main())
