#!/usr/bin/env python
"""Retrain a searched architecture from scratch: ``python tools/retrain.py --arch runs/search/arch.json`` (built-in
data). Same as ``bnnas retrain``.

ImageNet: ``python tools/retrain.py --arch runs/spos/arch.json --se --data /data/imagenet --work-dir runs/retrain``;
many GPUs: ``torchrun --nproc-per-node 8 tools/retrain.py ...`` (per-process --batch-size, LR scaled to the global
batch). Writes last.pth (resume), best.pth (best val top-1), metrics.json, training_curve.png and log.txt.
"""

import sys

from bnnas.cli.retrain import main

if __name__ == "__main__":
    sys.exit(main())
