"""Architectures: one op per layer of a search space, and the human-readable ``arch.json`` that carries them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


from bnnas.errors import BNNASError
from bnnas.core.space import PRESETS, SearchSpace, get_space, ops_from_paper_indices, paper_indices_from_ops, parse_op

ARCH_FORMAT = "bnnas.arch/1"


@dataclass(frozen=True)
class Arch:
    """A subnet: ``choices[l]`` indexes ``space.layers[l].choices``."""

    space: SearchSpace
    choices: tuple[int, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.choices) != len(self.space.layers):
            raise BNNASError(
                f"arch has {len(self.choices)} layers but space {self.space.name!r} has {len(self.space.layers)}"
            )
        for i, (c, layer) in enumerate(zip(self.choices, self.space.layers)):
            if not 0 <= c < len(layer.choices):
                raise BNNASError(f"layer {i}: choice {c} out of range 0..{len(layer.choices) - 1}")
        object.__setattr__(self, "choices", tuple(int(c) for c in self.choices))

    @classmethod
    def from_ops(cls, space: SearchSpace, ops: Sequence[str], meta: dict | None = None) -> "Arch":
        if len(ops) != len(space.layers):
            raise BNNASError(f"arch has {len(ops)} layers but space {space.name!r} has {len(space.layers)}")
        for op in ops:
            parse_op(op)
        return cls(space, tuple(space.op_index(i, op) for i, op in enumerate(ops)), dict(meta or {}))

    @classmethod
    def preset(cls, name: str, num_classes: int | None = None) -> "Arch":
        if name not in PRESETS:
            raise BNNASError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        space_name, idx = PRESETS[name]
        return cls.from_ops(get_space(space_name, num_classes), ops_from_paper_indices(idx), {"preset": name})

    @property
    def ops(self) -> list[str]:
        return [layer.choices[c] for layer, c in zip(self.space.layers, self.choices)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": ARCH_FORMAT,
            "space": self.space.name,
            "num_classes": self.space.num_classes,
            "ops": self.ops,
            "paper_indices": paper_indices_from_ops(self.ops),
            "layers": [
                {"op": op, "kernel": parse_op(op)[1] if parse_op(op)[0] == "mbconv" else None,
                 "expansion": parse_op(op)[2] or None, "cin": l.cin, "cout": l.cout, "stride": l.stride}
                for op, l in zip(self.ops, self.space.layers)
            ],
        }
        d.update(self.meta)
        return d

    def to_json(self, **extra: Any) -> str:
        """The ``arch.json`` text: :meth:`to_dict` plus ``extra`` fields, numpy values made plain."""
        from bnnas.outputs.jsonable import to_jsonable

        return json.dumps(to_jsonable({**self.to_dict(), **extra}), indent=2) + "\n"

    def describe(self, with_classes: bool = True) -> str:
        """``space [op op ...]`` (plus the class count) for messages."""
        text = f"{self.space.name} [{' '.join(self.ops)}]"
        return f"{text} ({self.space.num_classes} classes)" if with_classes else text

    def same_as(self, other: "Arch", ignore_classes: bool = False) -> bool:
        """Same space and the same op in every layer; the class count too unless ``ignore_classes`` (a backbone
        does not care about the classifier's width)."""
        same = self.space.name == other.space.name and self.choices == other.choices
        return same and (ignore_classes or self.space.num_classes == other.space.num_classes)

    def __str__(self) -> str:
        return f"{self.space.name}:[{' '.join(self.ops)}]"


def arch_from_dict(d: dict[str, Any], source: str = "arch") -> Arch:
    if not isinstance(d, dict):
        raise BNNASError(f"{source}: expected a JSON object, got {type(d).__name__}")
    if "preset" in d and "ops" not in d:
        return Arch.preset(d["preset"], d.get("num_classes"))
    missing = [k for k in ("space", "ops") if k not in d]
    if missing:
        raise BNNASError(f"{source}: missing field(s) {', '.join(missing)} (an arch file needs 'space' and 'ops')")
    if not isinstance(d["ops"], list) or not all(isinstance(o, str) for o in d["ops"]):
        raise BNNASError(f"{source}: 'ops' must be a list of op strings like \"k3e6\" or \"id\"")
    space = get_space(d["space"], d.get("num_classes"))
    try:
        meta = {k: v for k, v in d.items() if k not in ("format", "space", "num_classes", "ops", "paper_indices", "layers")}
        return Arch.from_ops(space, d["ops"], meta)
    except BNNASError as e:
        raise BNNASError(f"{source}: {e}") from None


def load_arch(path_or_spec: str | os.PathLike | dict, num_classes: int | None = None) -> Arch:
    """Load an arch from a JSON file, a dict, or a preset name (``bnnas-spos``, ``spos``, ``abs-fairnas``)."""
    if isinstance(path_or_spec, dict):
        arch = arch_from_dict(path_or_spec)
    elif str(path_or_spec) in PRESETS:
        arch = Arch.preset(str(path_or_spec))
    else:
        path = Path(path_or_spec)
        if not path.is_file():
            raise BNNASError(f"arch file not found: {path}")
        try:
            d = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BNNASError(f"arch file {path} is not valid JSON: {e}") from None
        arch = arch_from_dict(d, str(path))
    if num_classes is not None and num_classes != arch.space.num_classes:
        arch = Arch(get_space(arch.space.name, num_classes), arch.choices, arch.meta)
    return arch


def save_arch(arch: Arch, path: str | os.PathLike, **extra: Any) -> Path:
    from bnnas.outputs.checkpoint import atomic_write_text

    return atomic_write_text(Path(path), arch.to_json(**extra))
