"""``bnnas export`` / ``tools/export_backbone.py``: a retrained subnet's backbone for detection.

    bnnas export --checkpoint runs/retrain/best.pth --out work_dirs/bnnas_backbone.pth
    bnnas export --arch runs/search/arch.json --checkpoint runs/retrain/best.pth --out bb.pth

The output loads as ``BNNASBackbone(init_cfg=dict(type='Pretrained', ...))``. ``--arch`` (arch.json, preset name) is
checked against the arch stored in the checkpoint; for a supernet checkpoint it picks the path whose weights are
inherited. The output is written atomically; an existing ``--out`` is replaced only with ``--force``, and never when
it is the checkpoint or the arch file itself.
"""

from __future__ import annotations

import argparse
import json

import bnnas.cli.common as cli
import bnnas.cli.flags as flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=None, help="arch.json or preset; must match the checkpoint's arch")
    p.add_argument("--checkpoint", required=True, help="retrained subnet checkpoint (tools/retrain.py) or supernet")
    p.add_argument("--out", required=True, help="output .pth")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    flags.add(p, "debug")


def run(a: argparse.Namespace) -> None:
    from bnnas.export import export_backbone

    meta = export_backbone(a.checkpoint, a.out, a.arch, force=a.force)
    print(json.dumps({"out": a.out, "arch": " ".join(meta["arch"]["ops"]), "space": meta["arch"]["space"],
                      "se": meta["se"], "source_kind": meta["source_kind"]}))


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    """``tools/export_backbone.py``: parse ``argv``, export, return the exit code."""
    return cli.main(build_parser(), run, argv)
