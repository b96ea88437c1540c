"""PyTorch modules to ONNX and back through ONNX Runtime: export, a CPU session, and the check that both agree.

Export uses ``torch.onnx.export``'s default path since torch 2.9, the ``torch.export``-based exporter (``dynamo=True``,
which needs ``onnxscript``); the TorchScript exporter is deprecated. ``onnx``, ``onnxscript`` and ``onnxruntime`` come
with the ``deploy`` extra (pinned in constraints.txt, installed by scripts/setup_env.sh).
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bnnas.errors import BNNASError

# Max |onnxruntime - torch| allowed, relative to the largest |output| of torch. Both compute in float32 but ORT fuses
# Conv+BN+activation and sums convolutions in another order, so every output differs by float32 reassociation:
# about eps(float32) = 1.2e-7 times the summed |terms| per layer, growing with depth to ~1e-6 of the output scale
# here (measured on the demo arch and detector: docs/deploy.md). 1e-4 leaves two orders of margin for that, while a wrong op, weight or layout
# gives differences of the output's own size (>= 1e-2 of it).
RELATIVE_TOLERANCE = 1e-4
OPSET = 18


def _require(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise BNNASError(f"{name} is not installed: pip install 'bnnas[deploy]' (or run scripts/setup_env.sh)") from None


def to_onnx(module: nn.Module, example: torch.Tensor, path: Path | None = None) -> bytes:
    """``module`` (in eval mode) traced on ``example`` as an ONNX model; also written to ``path`` when given."""
    _require("onnxscript")
    module.eval()
    for name in ("torch.onnx", "torch.export", "onnxscript"):  # the exporter reports each pass at INFO level
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, opset_version=OPSET, verbose=False,
                                    external_data=False)
    buf = io.BytesIO()
    program.save(buf)
    data = buf.getvalue()
    if path is not None:
        from bnnas.outputs.checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(path), data)
    return data


def ort_session(model: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of an ONNX model; ``threads``: intra-op threads (None: onnxruntime's choice)."""
    ort = _require("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def ort_run(session: Any, x: torch.Tensor) -> list[np.ndarray]:
    """The session's outputs for the input ``x`` (its single input)."""
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy()})


@dataclass(frozen=True)
class OnnxCheck:
    """How far onnxruntime's outputs are from PyTorch's on one batch."""

    max_abs_diff: float
    output_scale: float  # the largest |torch output|
    tolerance: float  # RELATIVE_TOLERANCE * output_scale
    outputs: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def describe(self) -> str:
        return (f"max abs diff onnxruntime vs torch {self.max_abs_diff:.3g} over {self.outputs} output(s) of scale "
                f"{self.output_scale:.3g} (relative {self.max_abs_diff / max(self.output_scale, 1e-30):.2g}; "
                f"tolerance {self.tolerance:.3g} = {RELATIVE_TOLERANCE:g} x scale)")


@torch.no_grad()
def compare(module: nn.Module, session: Any, x: torch.Tensor) -> OnnxCheck:
    """Run ``module`` in PyTorch and ``session`` in onnxruntime on ``x`` and compare every output."""
    module.eval()
    ref = module(x)
    refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    got = ort_run(session, x)
    if len(got) != len(refs):
        raise BNNASError(f"the ONNX model has {len(got)} outputs, PyTorch's module {len(refs)}")
    diff, scale = 0.0, 0.0
    for r, g in zip(refs, got):
        r = r.float().cpu().numpy()
        if r.shape != g.shape:
            raise BNNASError(f"ONNX output of shape {g.shape} where PyTorch gives {r.shape}")
        diff = max(diff, float(np.abs(r - g).max()))
        scale = max(scale, float(np.abs(r).max()))
    return OnnxCheck(diff, scale, RELATIVE_TOLERANCE * scale, len(refs))
