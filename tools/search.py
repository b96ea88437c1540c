#!/usr/bin/env python
"""BN-NAS search: ``python tools/search.py`` (built-in data) or ``--data /data/imagenet --space spos-imagenet``.

Multi-GPU: ``torchrun --nproc-per-node 8 tools/search.py --data /data/imagenet ...``. Same as ``bnnas search``.
"""

import sys

from bnnas.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
