"""``bnnas det-complexity`` / ``tools/det_complexity.py``: conv MACs ("FLOPs" in the NAS papers' convention) and
parameters of a detector config, per part.

    bnnas det-complexity configs/bnnas_effdet.py --size 512
"""

from __future__ import annotations

import argparse
import json

import bnnas.cli.common as cli
import bnnas.cli.flags as flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="mmdet config file")
    p.add_argument("--size", type=cli.positive_int, default=512, help="square input side (batch 1)")
    flags.add(p, "debug")


def run(a: argparse.Namespace) -> None:
    from mmengine.config import Config

    import mmdet_plugin  # noqa: F401  (registers the BN-NAS backbone, neck and head)
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmdet_plugin.complexity import detector_macs, num_params

    register_all_modules()
    model = MODELS.build(Config.fromfile(a.config).model)
    macs = detector_macs(model, a.size)
    params = num_params(model)
    print(json.dumps({"size": a.size,
                      "gmacs": {k: round(v / 1e9, 3) for k, v in macs.items()},
                      "mparams": {k: round(v / 1e6, 3) for k, v in params.items() if k != "data_preprocessor"}},
                     indent=2))


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    """``tools/det_complexity.py``: parse ``argv``, print the complexity as JSON, return the exit code."""
    return cli.main(build_parser(), run, argv)
