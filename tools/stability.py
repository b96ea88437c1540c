#!/usr/bin/env python
"""Do seed-only-different search runs agree? ``python tools/stability.py runs/s0 runs/s1 runs/s2``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnas.stability_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
