#!/usr/bin/env python
"""BN-NAS's conv bias: ``python tools/bias.py`` trains a BN-only supernet in the biased and the unbiased
(BNNAS++, BN after every candidate) form of one space and reports the share of conv ops the search picks.
Same as ``bnnas bias``."""

import sys

from bnnas.cli.trust import main

if __name__ == "__main__":
    sys.exit(main(["bias", *sys.argv[1:]]))
