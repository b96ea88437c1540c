#!/usr/bin/env python
"""Does the search beat random? ``python tools/verify.py --arch runs/search/arch.json [--random 5 --seeds 2]``.

Retrains the searched arch and N random archs of the same FLOPs budget on one short schedule with S seeds and reports
held-out accuracy with 95% t-intervals, the searched arch's percentile, whether the random archs differ beyond seed
noise (S >= 2) and a verdict. Writes verify.json, verify.md and verify.png into --work-dir (default runs/verify); a
killed run resumes, finished runs are skipped.
Same as ``bnnas verify``.
"""

import sys

from bnnas.cli.verify import main

if __name__ == "__main__":
    sys.exit(main())
