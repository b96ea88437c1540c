"""Backbone checkpoints for detection: a subnet's weights without its classifier, carrying the arch they belong to.

The exported file is ``{"kind": "backbone", "format": BACKBONE_FORMAT, "state_dict": ..., "arch": <arch dict>,
"se": bool, "source": ..., "epoch": ...}``. Its ``state_dict`` keys (``stem.*``, ``layers.*``) are exactly those of
``mmdet_plugin.BNNASBackbone``, so mmengine's ``Pretrained`` initialiser would load it too; the backbone itself
reads it through :func:`load_backbone_state`, which refuses weights of another architecture with a clear message.
Only plain Python types and tensors are stored, so ``torch.load(..., weights_only=True)`` can read the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from bnnas.core.arch import Arch, arch_from_dict, load_arch
from bnnas.outputs.checkpoint import atomic_save, load_checkpoint, load_state_strict
from bnnas.outputs.jsonable import to_jsonable
from bnnas.errors import BNNASError
from bnnas.core.subnet import SubNet, subnet_state_from_supernet

BACKBONE_KIND = "backbone"
BACKBONE_FORMAT = "bnnas.backbone/1"
HEAD_PREFIX = "head."


def check_arch(expected: Arch, found: Arch, source: str) -> None:
    """Refuse weights of another architecture (the classifier width does not matter to a backbone)."""
    if not expected.same_as(found, ignore_classes=True):
        diff = [i for i, (x, y) in enumerate(zip(expected.ops, found.ops)) if x != y]
        where = (f"layers {', '.join(map(str, diff[:6]))}{' ...' if len(diff) > 6 else ''} differ"
                 if expected.space.name == found.space.name else f"space {found.space.name} vs {expected.space.name}")
        raise BNNASError(
            f"{source} holds weights for arch {found.describe(False)}, but the configured arch is "
            f"{expected.describe(False)} ({where}); export the backbone of the configured arch or point arch= at the "
            "file's arch"
        )


def backbone_state(subnet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A SubNet state dict without the classifier head (``head.*``)."""
    return {k: v for k, v in subnet_state.items() if not k.startswith(HEAD_PREFIX)}


def check_output(out: str | os.PathLike, inputs: list[str | os.PathLike | None], force: bool = False) -> None:
    """Refuse to write ``out`` onto one of ``inputs`` (ever) or onto an existing file (unless ``force``)."""
    target = Path(out)
    for src in inputs:
        if src is None or isinstance(src, dict) or not Path(src).exists():
            continue
        if target.exists() and os.path.samefile(target, src) or target.resolve() == Path(src).resolve():
            raise BNNASError(f"--out {out} is the input {src}; writing it would destroy it (choose another --out)")
    if target.is_dir():
        raise BNNASError(f"--out {out} is a directory; give a file name such as {target / 'backbone.pth'}")
    if target.exists() and not force:
        raise BNNASError(f"--out {out} exists; pass --force to replace it")


def subnet_from_checkpoint(checkpoint: str | os.PathLike, arch: str | os.PathLike | dict | None = None
                           ) -> tuple[SubNet, dict[str, Any]]:
    """A ``SubNet`` holding a retrained subnet's weights (``kind: subnet``) or a supernet path's (``kind: supernet``),
    and the checkpoint. ``arch`` defaults to the subnet checkpoint's own and must match it; a supernet checkpoint needs
    it (the path whose weights to inherit; the classifier keeps its random init when the widths differ). Weights
    that do not fit the arch are refused, never silently dropped."""
    ckpt = load_checkpoint(checkpoint)
    kind = ckpt.get("kind")
    source = str(checkpoint)
    want = load_arch(arch) if arch is not None else None
    if kind == "subnet":
        if "arch" not in ckpt:
            raise BNNASError(f"{source} is a subnet checkpoint without an 'arch' entry; it cannot be exported safely")
        found = arch_from_dict(ckpt["arch"], f"{source} arch")
        if want is not None:
            check_arch(want, found, source)
        the_arch, se = found, bool(ckpt.get("se", False))
        state = ckpt["state_dict"]
    elif kind == "supernet":
        if want is None:
            raise BNNASError(f"{source} is a supernet checkpoint: pass --arch to choose the path to export")
        the_arch, se = want, False
        state = subnet_state_from_supernet(ckpt["state_dict"], want)
    elif kind == BACKBONE_KIND:
        raise BNNASError(f"{source} is already a backbone checkpoint; use it directly")
    else:
        raise BNNASError(f"{source} holds a {kind!r} checkpoint; expected a retrained 'subnet' (or a 'supernet')")
    net = SubNet(the_arch, se=se, dropout=0.0)
    if kind == "supernet":  # the supernet's classifier may be of another width; the backbone does not need it
        state = {**backbone_state(state), **{k: v for k, v in net.state_dict().items() if k.startswith(HEAD_PREFIX)}}
    load_state_strict(net, state, f"{source} (arch {the_arch.describe(False)}, se={se})")
    return net, ckpt


def export_backbone(checkpoint: str | os.PathLike, out: str | os.PathLike,
                    arch: str | os.PathLike | dict | None = None, force: bool = False) -> dict[str, Any]:
    """Write a backbone checkpoint from a retrained subnet (``kind: subnet``) or a supernet (``kind: supernet``).

    ``arch`` defaults to the arch stored in a subnet checkpoint; when given, it must match that arch. A supernet
    checkpoint needs ``arch`` (the path whose weights to inherit). The weights are strictly loaded into a
    ``SubNet`` of the arch first (:func:`subnet_from_checkpoint`). Returns the written object's metadata (everything
    but the weights). An existing ``out`` is replaced only with ``force``; ``out`` naming the checkpoint or the arch
    file is always refused.
    """
    check_output(out, [checkpoint, arch if isinstance(arch, (str, os.PathLike)) else None], force)
    net, ckpt = subnet_from_checkpoint(checkpoint, arch)
    meta = {"kind": BACKBONE_KIND, "format": BACKBONE_FORMAT, "arch": to_jsonable(net.arch.to_dict()), "se": net.se,
            "source": str(checkpoint), "source_kind": ckpt.get("kind")}
    if isinstance(ckpt.get("epoch"), int):
        meta["epoch"] = ckpt["epoch"]
    atomic_save({**meta, "state_dict": {k: v.detach().clone() for k, v in backbone_state(net.state_dict()).items()}},
                out)
    return meta


def load_backbone_state(path: str | os.PathLike, arch: Arch, se: bool, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Weights for a backbone of ``arch``/``se`` from ``path``; refuses another arch with a one-line error.

    Accepts an exported backbone, a retrained subnet checkpoint (its head is dropped) or any checkpoint whose
    ``state_dict`` holds the backbone under ``prefix`` (e.g. ``"backbone."`` in an mmdet detector checkpoint; those
    carry no arch, so only the strict key/shape check applies).
    """
    ckpt = load_checkpoint(path)
    source = str(path)
    state = ckpt["state_dict"]
    if prefix:
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise BNNASError(f"{source} has no weights under prefix {prefix!r}")
    if "arch" in ckpt:
        check_arch(arch, arch_from_dict(ckpt["arch"], f"{source} arch"), source)
        if "se" in ckpt and bool(ckpt["se"]) != bool(se):
            raise BNNASError(
                f"{source} was trained with se={bool(ckpt['se'])} but the backbone is configured with se={bool(se)}"
            )
    return backbone_state(state)

