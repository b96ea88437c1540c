"""``bnnas demo-data`` / ``tools/make_coco_demo.py``: write the built-in COCO-format digits detection set.

    bnnas demo-data                       # data/coco_demo: 400 train / 100 val images at 128 px, no download
    bnnas demo-data --out /tmp/c --num-train 16 --num-val 8 --image-size 128 --seed 1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.data.coco_synth import SPLITS, SynthConfig

MARKER = ".bnnas_coco_demo"  # lets a re-run recognise (and rewrite) a dir this tool made
OWNED = ("annotations", *(f"{s}2017" for s in SPLITS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = SynthConfig()
    p.add_argument("--out", default="data/coco_demo",
                   help="output root (mmdet COCO layout); must be new, empty or made by this tool")
    p.add_argument("--num-train", type=cli.positive_int, default=d.num_train, help="training images")
    p.add_argument("--num-val", type=cli.positive_int, default=d.num_val, help="validation images")
    p.add_argument("--image-size", type=cli.positive_int, default=d.image_size, help="square image side in px")
    p.add_argument("--min-object", type=cli.positive_int, default=d.min_object, help="smallest digit side in px")
    p.add_argument("--max-object", type=cli.positive_int, default=d.max_object, help="largest digit side in px")
    p.add_argument("--max-objects", type=cli.positive_int, default=d.max_objects, help="digits per image: 1..N")
    flags.add(p, "seed", default=d.seed)
    flags.add(p, "debug")


def run(a: argparse.Namespace) -> None:
    from bnnas.data.coco_check import check_coco
    from bnnas.data.coco_synth import make_coco_demo
    from bnnas.outputs.workdir import claim_output_dir

    cfg = SynthConfig(a.num_train, a.num_val, a.image_size, a.min_object, a.max_object, a.max_objects, a.seed)
    cfg.validate()  # before the dir is claimed
    claim_output_dir(Path(a.out), MARKER, OWNED)
    summary = make_coco_demo(a.out, cfg)
    for split in SPLITS:  # the files we just wrote must pass the same check training applies
        check_coco(summary[split]["ann_file"], Path(a.out) / f"{split}2017")
    print(json.dumps({k: summary[k] for k in ("root", "train", "val")}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    """``tools/make_coco_demo.py``: parse ``argv``, write the set, return the exit code."""
    return cli.main(build_parser(), run, argv)
