"""Architectures: one op per layer of a search space, and the human-readable ``arch.json`` that carries them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence


from bnnas.errors import BNNASError
from bnnas.core.space import (
    IDENTITY, PRESETS, SPACE_TABLES, SearchSpace, get_space, is_identity, ops_from_paper_indices,
    paper_indices_from_ops, parse_op,
)
from bnnas.core.space_file import space_from_record, space_record

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
    def from_key(cls, space: SearchSpace, key: str, meta: dict | None = None) -> "Arch":
        """The arch whose benchmark key is ``key`` (one digit a layer, the space's ``key_ops`` encoding)."""
        if not space.key_ops:
            raise BNNASError(f"space {space.name!r} has no benchmark keys")
        if len(key) != len(space.layers) or not key.isdigit():
            raise BNNASError(f"{space.name} key {key!r}: expected {len(space.layers)} digits, one a layer")
        choices = []
        for li, (digit, layer) in enumerate(zip(key, space.layers)):
            codes = [key_digit(space, op) for op in layer.choices]
            if int(digit) not in codes:
                raise BNNASError(f"{space.name} key {key}: layer {li} has no op {digit} (it offers "
                                 f"{', '.join(f'{c}={op}' for c, op in zip(codes, layer.choices))})")
            choices.append(codes.index(int(digit)))
        return cls(space, tuple(choices), dict(meta or {}))

    @property
    def benchmark_key(self) -> str | None:
        """This arch's key in its space's benchmark table, or None where the space has no table."""
        if not self.space.key_ops:
            return None
        return "".join(str(key_digit(self.space, op)) for op in self.ops)

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
        if self.benchmark_key is not None:
            d["benchmark_key"] = self.benchmark_key
        record = space_record(self.space)
        if record is not None:  # the whole space, so the arch loads without its file
            d["space_file"] = record
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


def key_digit(space: SearchSpace, op: str) -> int:
    """The digit of ``op`` in ``space``'s benchmark keys; a 1x1-conv identity stands in for the identity where the
    shape changes, so it shares its digit."""
    return space.key_ops.index(IDENTITY if is_identity(op) else op)


def _from_key_spec(spec: str, num_classes: int | None) -> Arch | None:
    """``SPACE:KEY`` (e.g. ``nas-bench-macro:02012100``) -> the arch; None when ``spec`` is not of that form."""
    name, sep, key = spec.partition(":")
    if not sep or name not in SPACE_TABLES or os.path.exists(spec):
        return None
    return Arch.from_key(get_space(name, num_classes), key)


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
    if "space_file" in d:
        space_from_record(d["space_file"], source)
    space = get_space(d["space"], d.get("num_classes"))
    try:
        meta = {k: v for k, v in d.items() if k not in ("format", "space", "num_classes", "ops", "paper_indices",
                                                        "layers", "benchmark_key", "space_file")}
        return Arch.from_ops(space, d["ops"], meta)
    except BNNASError as e:
        raise BNNASError(f"{source}: {e}") from None


def load_arch(path_or_spec: str | os.PathLike | dict, num_classes: int | None = None) -> Arch:
    """Load an arch from a JSON file, a dict, a preset name (``bnnas-spos``, ``spos``, ``abs-fairnas``) or a
    benchmark key (``nas-bench-macro:02012100``)."""
    keyed = None if isinstance(path_or_spec, dict) else _from_key_spec(str(path_or_spec), num_classes)
    if keyed is not None:
        arch = keyed
    elif isinstance(path_or_spec, dict):
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
