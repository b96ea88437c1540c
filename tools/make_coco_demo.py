#!/usr/bin/env python
"""Write the built-in COCO-format digits detection set (no download): ``python tools/make_coco_demo.py [--out DIR]``
(``data/coco_demo/`` by default). Same as ``bnnas demo-data``."""

import sys

from bnnas.cli.demo_data import main

if __name__ == "__main__":
    sys.exit(main())
