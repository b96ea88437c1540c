#!/usr/bin/env python
"""Our own benchmark table: ``python tools/ground_truth.py [--epochs 5 --train-images 6000]``.

Trains band and spread keys of a benchmark space from scratch on built-in data with the benchmark's recipe, several
seeds each, resumable; writes the table in the published format. Same as ``bnnas ground-truth``.
"""

import sys

from bnnas.cli.ground_truth import main

if __name__ == "__main__":
    sys.exit(main())
