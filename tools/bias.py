#!/usr/bin/env python
"""BN-NAS's conv bias: ``python tools/bias.py`` trains a BN-only supernet in the biased and the unbiased
(BNNAS++, BN after every candidate) form of one space and reports the share of conv ops the search picks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnas.trust_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bias", *sys.argv[1:]]))
