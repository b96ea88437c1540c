#!/usr/bin/env python
"""Conv MACs ("FLOPs" in the NAS papers' convention) and parameters of a detector config, per part.

    python tools/det_complexity.py configs/bnnas_effdet.py --size 512
"""

from __future__ import annotations

import argparse
import json
import sys



def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--size", type=int, default=512, help="square input side (batch 1)")
    a = p.parse_args(argv)
    from mmengine.config import Config

    from bnnas.errors import BNNASError
    import mmdet_plugin  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmdet_plugin.complexity import detector_macs, num_params

    register_all_modules()
    try:
        model = MODELS.build(Config.fromfile(a.config).model)
    except BNNASError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    macs = detector_macs(model, a.size)
    params = num_params(model)
    print(json.dumps({"size": a.size,
                      "gmacs": {k: round(v / 1e9, 3) for k, v in macs.items()},
                      "mparams": {k: round(v / 1e6, 3) for k, v in params.items() if k != "data_preprocessor"}},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
