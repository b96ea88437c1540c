#!/usr/bin/env python
"""Can the indicator be trusted on your data? ``python tools/correlation.py [rank|early-bird|bias] ...``

* ``rank`` (default): Kendall tau / Spearman rho of each indicator vs from-scratch accuracy of K subnets
  (``torchrun --nproc-per-node N tools/correlation.py rank ...`` shards the K trainings over GPUs);
* ``early-bird``: the arch ``tools/search.py --early-bird`` finds vs the full schedule's (takes search.py's flags);
* ``bias``: conv share picked in the biased vs unbiased (BNNAS++) space (same as ``tools/bias.py``).

Same as ``bnnas correlate [rank|early-bird]`` and ``bnnas bias``.
"""

import sys

from bnnas.cli.trust import main

if __name__ == "__main__":
    sys.exit(main())
