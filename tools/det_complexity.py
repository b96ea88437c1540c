#!/usr/bin/env python
"""Conv MACs and parameters of a detector config, per part: ``python tools/det_complexity.py configs/bnnas_effdet.py
--size 512``. Same as ``bnnas det-complexity``."""

import sys

from bnnas.cli.det_complexity import main

if __name__ == "__main__":
    sys.exit(main())
