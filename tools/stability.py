#!/usr/bin/env python
"""Do seed-only-different search runs agree? ``python tools/stability.py runs/s0 runs/s1 runs/s2``.
Same as ``bnnas stability``."""

import sys

from bnnas.cli.stability import main

if __name__ == "__main__":
    sys.exit(main())
