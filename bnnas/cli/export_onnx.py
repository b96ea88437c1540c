"""``bnnas export-onnx``: a searched network as ONNX, checked in onnxruntime against PyTorch.

    bnnas export-onnx --arch runs/search/arch.json --checkpoint runs/retrain/best.pth --out net.onnx
    bnnas export-onnx --arch W/search/arch.json --detector configs/bnnas_effdet_demo.py --checkpoint W/det/epoch_10.pth \\
        --out det.onnx

Without ``--detector`` it exports the classifier (the SubNet of ``--arch``, with a retrained subnet's or a supernet
path's weights from ``--checkpoint``; without one, seeded random weights, which checks the graph, not accuracy). With
``--detector CONFIG`` it exports the mmdet detector's raw head outputs: backbone, BiFPN and head, giving each level's
class scores then each level's box regressions; anchors, decoding and NMS stay in Python (as in mmdeploy's split).
The file is then run in onnxruntime (CPU provider) on a fixed random batch; the max abs difference to PyTorch is
printed, and above the tolerance (1e-4 of the output scale, see bnnas/core/onnx_io.py) the command fails with one
line and writes nothing. The exported graph has a fixed input size (``--input-size``, default: the arch's space or
the detector config's image_size) and batch (``--batch``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import bnnas.cli.common as cli
import bnnas.cli.flags as flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="arch.json (or a preset) of the network to export")
    p.add_argument("--checkpoint", default=None,
                   help="weights: retrained subnet or supernet checkpoint; with --detector, a detector checkpoint "
                        "(mim train's epoch_N.pth); default: seeded random weights")
    p.add_argument("--out", required=True, help="output .onnx")
    p.add_argument("--input-size", type=cli.int_at_least(8), default=None, help="square input side in px")
    p.add_argument("--detector", default=None, metavar="CONFIG",
                   help="mmdet config (e.g. configs/bnnas_effdet_demo.py): export its raw head outputs")
    p.add_argument("--batch", type=cli.positive_int, default=1, help="batch of the exported graph and the check")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    flags.add(p, "seed")
    flags.add(p, "debug")


def _classifier(a: argparse.Namespace) -> tuple[torch.nn.Module, int]:
    from bnnas.core.arch import load_arch
    from bnnas.core.subnet import SubNet
    from bnnas.export import subnet_from_checkpoint

    if a.checkpoint is not None:
        net = subnet_from_checkpoint(a.checkpoint, a.arch)[0]
    else:
        torch.manual_seed(a.seed)
        net = SubNet(load_arch(a.arch), dropout=0.0)
    return net, a.input_size or net.arch.space.input_size


def _detector(a: argparse.Namespace) -> tuple[torch.nn.Module, int]:
    from mmdet_plugin.onnx import build_raw_detector

    return build_raw_detector(a.detector, a.arch, a.checkpoint, a.input_size, a.seed)


def run(a: argparse.Namespace) -> dict:
    from bnnas.core.onnx_io import compare, ort_session, to_onnx
    from bnnas.errors import BNNASError
    from bnnas.export import check_output
    from bnnas.outputs.checkpoint import atomic_write_bytes

    check_output(a.out, [a.arch, a.checkpoint, a.detector], a.force)
    net, size = _detector(a) if a.detector else _classifier(a)
    net.eval()
    g = torch.Generator().manual_seed(a.seed)  # the fixed batch of the check
    x = torch.randn(a.batch, 3, size, size, generator=g)
    model = to_onnx(net, x)
    check = compare(net, ort_session(model), x)
    if not check.ok:
        raise BNNASError(f"the ONNX model disagrees with PyTorch: {check.describe()}; nothing written")
    atomic_write_bytes(Path(a.out), model)
    doc = {"out": a.out, "what": "detector raw head outputs" if a.detector else "classifier", "input": list(x.shape),
           "max_abs_diff": check.max_abs_diff, "output_scale": check.output_scale, "tolerance": check.tolerance}
    print(f"wrote {a.out} ({doc['what']}, input {'x'.join(map(str, x.shape))}): {check.describe()}")
    print(json.dumps(doc))
    return doc


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, argv)
