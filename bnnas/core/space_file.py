"""Search spaces as YAML/JSON files: the fields of :class:`bnnas.core.space.SpaceTable`, checked one by one.

A file is read into a table, checked (a bad field is one :class:`BNNASError` naming it), and registered under its
``name`` so that everything that looks spaces up by name (supernet checkpoints, ``arch.json``) finds it in this
process. :func:`space_record` is what ``arch.json`` and checkpoints store of a file space: its whole normalized table
and that table's sha256, so they rebuild it without the file (:func:`space_from_record`). docs/spaces.md describes
the format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from bnnas.core.space import (
    ACTIVATIONS, FC_CONVENTIONS, SPACE_TABLES, SearchSpace, SpaceTable, build_space, parse_op, register_space,
    space_table,
)
from bnnas.errors import BNNASError

SPACE_FORMAT = "bnnas.space/1"
REQUIRED = ("input_size", "stem", "stages", "head_channels", "num_classes")
# field -> its default when absent (SpaceTable's); the order is the order a dumped file lists them in
OPTIONAL: dict[str, Any] = {
    "first_channels": None, "choices": [], "transition_identity": None, "fixed_identity": [], "free_identity": False,
    "extra_ops": [], "transition_op": None, "layer_ops": {}, "bn_after_every_op": False, "activation": "relu6",
    "fc_flops": "(2in-1)out", "default_budget": 0.0, "benchmark": "",
}
HEADER_FIELDS = ("format", "name", "description")


class _Field:
    """Checks of one field's value, raising one error that names the field."""

    def __init__(self, source: str, name: str) -> None:
        self.source, self.name = source, name

    def fail(self, problem: str) -> BNNASError:
        return BNNASError(f"{self.source}: field {self.name!r}: {problem}")

    def at(self, sub: str | int) -> "_Field":
        return _Field(self.source, f"{self.name}[{sub}]" if isinstance(sub, int) else f"{self.name}.{sub}")

    def int(self, v: Any, low: int = 1) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise self.fail(f"expected an integer >= {low}, got {v!r}")
        return v

    def op(self, v: Any) -> str:
        if not isinstance(v, str):
            raise self.fail(f"expected an op string such as k3e6 or id, got {v!r}")
        try:
            parse_op(v)
        except BNNASError as e:
            raise self.fail(str(e)) from None
        return v

    def ops(self, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list):
            raise self.fail(f"expected a list of op strings such as [k3e6, id], got {v!r}")
        if len(set(map(str, v))) != len(v):
            raise self.fail(f"lists an op twice: {v}")
        return tuple(self.at(i).op(o) for i, o in enumerate(v))

    def mapping(self, v: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(v, dict) or set(v) != set(keys):
            raise self.fail(f"expected a mapping with exactly the keys {', '.join(keys)}, got {v!r}")
        return v

    def kind(self, v: Any, kinds: tuple[type, ...], what: str) -> Any:
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            raise self.fail(f"expected {what}, got {v!r}")
        return v


def _stages(f: _Field, v: Any) -> tuple[tuple[int, int, int, int], ...]:
    if not isinstance(v, list) or not v:
        raise f.fail(f"expected a non-empty list of {{channels, layers, stride}}, got {v!r}")
    out = []
    for i, st in enumerate(v):
        g = f.at(i)
        st = g.mapping(st, ("channels", "layers", "stride"))
        out.append((0, g.at("channels").int(st["channels"]), g.at("layers").int(st["layers"]),
                    g.at("stride").int(st["stride"])))
    return tuple(out)


def _layer_ops(f: _Field, v: Any) -> tuple[tuple[int, tuple[str, ...]], ...]:
    if not isinstance(v, dict):
        raise f.fail(f"expected a mapping from layer index to a list of ops, got {v!r}")
    out = []
    for k, ops in v.items():
        idx = int(k) if isinstance(k, str) and k.isdigit() else k  # JSON keys are strings
        f.at(str(k)).int(idx, 0)
        out.append((idx, f.at(str(k)).ops(ops)))
        if not out[-1][1]:
            raise f.at(str(k)).fail("expected at least one op")
    return tuple(sorted(out))


def _optional_op(f: _Field, v: Any) -> str | None:
    return None if v is None else f.op(v)


def _choice(options: tuple[str, ...]) -> Callable[[_Field, Any], str]:
    def check(f: _Field, v: Any) -> str:
        if v not in options:
            raise f.fail(f"expected one of {', '.join(options)}, got {v!r}")
        return v
    return check


# field -> check returning the SpaceTable value
_CHECKS: dict[str, Callable[[_Field, Any], Any]] = {
    "input_size": lambda f, v: f.int(v, 8),
    "stem": lambda f, v: (f.at("channels").int(f.mapping(v, ("channels", "stride"))["channels"]),
                          f.at("stride").int(v["stride"])),
    "first_channels": lambda f, v: None if v is None else f.int(v),
    "stages": _stages,
    "head_channels": lambda f, v: f.int(v),
    "num_classes": lambda f, v: f.int(v, 2),
    "choices": lambda f, v: f.ops(v),
    "transition_identity": _optional_op,
    "fixed_identity": lambda f, v: tuple(f.at(i).int(x, 0) for i, x in enumerate(f.kind(v, (list,), "a list"))),
    "free_identity": lambda f, v: f.kind(v, (bool,), "true or false"),
    "extra_ops": lambda f, v: f.ops(v),
    "transition_op": _optional_op,
    "layer_ops": _layer_ops,
    "bn_after_every_op": lambda f, v: f.kind(v, (bool,), "true or false"),
    "activation": _choice(ACTIVATIONS),
    "fc_flops": _choice(FC_CONVENTIONS),
    "default_budget": lambda f, v: float(f.kind(v, (int, float), "a number of MFLOPs")),
    "benchmark": lambda f, v: f.kind(v, (str,), "a string"),
}


def table_from_dict(doc: Any, source: str) -> tuple[str, SpaceTable]:
    """The space's name and table from a parsed file; the first bad field raises one error naming it."""
    if not isinstance(doc, dict):
        raise BNNASError(f"{source}: expected a mapping of space fields at the top level, got {type(doc).__name__}")
    unknown = [k for k in doc if k not in _CHECKS and k not in HEADER_FIELDS]
    if unknown:
        raise BNNASError(f"{source}: unknown field {str(unknown[0])!r} (fields: {', '.join(HEADER_FIELDS)}, "
                         f"{', '.join(_CHECKS)})")
    if doc.get("format", SPACE_FORMAT) != SPACE_FORMAT:
        raise BNNASError(f"{source}: field 'format': expected {SPACE_FORMAT!r}, got {doc['format']!r}")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise BNNASError(f"{source}: missing field {missing[0]!r} (required: {', '.join(REQUIRED)})")
    name = _Field(source, "name").kind(doc.get("name", Path(source).stem), (str,), "a string")
    if not name.strip() or name.lower().endswith((".yaml", ".yml", ".json")):
        raise BNNASError(f"{source}: field 'name': expected a space name, got {name!r}")
    values = {k: _CHECKS[k](_Field(source, k), doc[k] if k in doc else OPTIONAL[k]) for k in _CHECKS}
    values["stem"], values["stages"] = tuple(values["stem"]), tuple(values["stages"])
    description = _Field(source, "description").kind(doc.get("description", ""), (str,), "a string")
    return name, SpaceTable(**values, description=description)


def table_to_dict(name: str, table: SpaceTable) -> dict[str, Any]:
    """The normalized file form of ``table`` (every field, defaults included): what dumps and records hold."""
    d: dict[str, Any] = {"format": SPACE_FORMAT, "name": name, "description": table.description,
                         "input_size": table.input_size,
                         "stem": {"channels": table.stem[0], "stride": table.stem[1]},
                         "first_channels": table.first_channels,
                         "stages": [{"channels": c, "layers": n, "stride": s} for _t, c, n, s in table.stages],
                         "head_channels": table.head_channels, "num_classes": table.num_classes}
    for k in OPTIONAL:
        v = getattr(table, k)
        d[k] = {str(i): list(ops) for i, ops in v} if k == "layer_ops" else list(v) if isinstance(v, tuple) else v
    return d


def table_sha256(d: dict[str, Any]) -> str:
    """Hash of a normalized table (key order and formatting of the file do not matter)."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _parse_text(path: Path) -> Any:
    """The file's content as plain data; a syntax error is one line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise BNNASError(f"cannot read space file {path}: {e}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml  # a dependency of bnnas (pyproject), imported where YAML is read

        return yaml.safe_load(text)
    except ValueError as e:
        raise BNNASError(f"{path}: not valid JSON: {e}") from None
    except Exception as e:  # yaml.YAMLError; its message spans lines
        raise BNNASError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None


def _register(name: str, table: SpaceTable, source: str) -> SearchSpace:
    """Build (a table that builds no space, e.g. identity at a strided layer, is an error) and register."""
    try:
        n_layers = len(build_space(name, table).layers)
    except (ValueError, BNNASError) as e:
        raise BNNASError(f"{source}: {e}") from None
    for field, indices in (("fixed_identity", table.fixed_identity), ("layer_ops", dict(table.layer_ops))):
        bad = [i for i in indices if i >= n_layers]
        if bad:
            raise BNNASError(f"{source}: field {field!r}: layer {bad[0]} does not exist (the stages make "
                             f"{n_layers} layers, 0..{n_layers - 1})")
    try:
        return register_space(name, table, table_sha256(table_to_dict(name, table)))
    except BNNASError as e:
        raise BNNASError(f"{source}: {e}") from None


def load_space_file(path: str | Path) -> SearchSpace:
    """Read, check and register the space in ``path`` (``.yaml``, ``.yml`` or ``.json``)."""
    path = Path(path)
    if not path.is_file():
        raise BNNASError(f"space file not found: {path}")
    name, table = table_from_dict(_parse_text(path), str(path))
    return _register(name, table, str(path))


def space_record(space: SearchSpace) -> dict[str, Any] | None:
    """What ``arch.json`` and checkpoints store of a file space (None for a built-in one): its table and hash."""
    if not space.file_sha256:
        return None
    return {"sha256": space.file_sha256, "space": table_to_dict(space.name, space_table(space.name))}


def space_from_record(record: Any, source: str) -> SearchSpace:
    """Register the file space a :func:`space_record` describes (its hash must match its contents)."""
    if not isinstance(record, dict) or not isinstance(record.get("space"), dict):
        raise BNNASError(f"{source}: 'space_file' must hold the space's fields under 'space'")
    name, table = table_from_dict(record["space"], f"{source} space_file")
    if table_sha256(table_to_dict(name, table)) != record.get("sha256"):
        raise BNNASError(f"{source}: the recorded space {name!r} does not match its sha256 (edited by hand?)")
    return _register(name, table, source)


def dump_space(name: str) -> dict[str, Any]:
    """A built-in space in the file form (loads back to the same space)."""
    if name not in SPACE_TABLES:
        raise BNNASError(f"unknown search space {name!r}; built-in spaces: {', '.join(sorted(SPACE_TABLES))}")
    return table_to_dict(name, SPACE_TABLES[name])


def space_text(d: dict[str, Any], as_json: bool) -> str:
    """A space file's text: JSON, or YAML with one line per stage."""
    if as_json:
        return json.dumps(d, indent=2) + "\n"
    import yaml

    head = "# bnnas search space (docs/spaces.md); load with --space THIS_FILE\n"
    return head + yaml.safe_dump(d, sort_keys=False, default_flow_style=None, width=118)
