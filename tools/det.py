#!/usr/bin/env python
"""``mim train|test mmdet ...`` ending with the plugin's one-line error: ``python tools/det.py train
configs/bnnas_effdet_demo.py --gpus 0 --work-dir work_dirs/demo``. Same as ``bnnas det``."""

import sys

from bnnas.cli.det import main

if __name__ == "__main__":
    sys.exit(main())
