#!/usr/bin/env python
"""Export a retrained subnet's backbone for detection (``BNNASBackbone(init_cfg=dict(type='Pretrained', ...))``).

    python tools/export_backbone.py --checkpoint runs/retrain/best.pth --out work_dirs/bnnas_backbone.pth
    python tools/export_backbone.py --arch runs/search/arch.json --checkpoint runs/retrain/best.pth --out bb.pth

``--arch`` (arch.json, preset name) is checked against the arch stored in the checkpoint; for a supernet
checkpoint it picks the path whose weights are inherited. The output is written atomically; an existing ``--out``
is replaced only with ``--force``, and never when it is the checkpoint or the arch file itself.
"""

from __future__ import annotations

import argparse
import json
import sys


import bnnas.cli.common as cli
from bnnas.export import export_backbone


def export(a: argparse.Namespace) -> None:
    meta = export_backbone(a.checkpoint, a.out, a.arch, force=a.force)
    print(json.dumps({"out": a.out, "arch": " ".join(meta["arch"]["ops"]), "space": meta["arch"]["space"],
                      "se": meta["se"], "source_kind": meta["source_kind"]}))


def main(argv: list[str] | None = None) -> int:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default=None, help="arch.json or preset; must match the checkpoint's arch")
    p.add_argument("--checkpoint", required=True, help="retrained subnet checkpoint (tools/retrain.py) or supernet")
    p.add_argument("--out", required=True, help="output .pth")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    cli.add_debug(p)
    return cli.main(p, export, argv)


if __name__ == "__main__":
    sys.exit(main())
