#!/usr/bin/env python
"""Export a retrained subnet's backbone for detection: ``python tools/export_backbone.py --checkpoint
runs/retrain/best.pth --out work_dirs/bnnas_backbone.pth [--arch runs/search/arch.json]``. Same as ``bnnas export``."""

import sys

from bnnas.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
