#!/usr/bin/env python
"""BN-NAS search: ``python tools/search.py`` (built-in digits) or ``--data /data/imagenet --space spos-imagenet``.

Multi-GPU: ``torchrun --nproc-per-node 8 tools/search.py --data /data/imagenet ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bnnas.pipeline import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
