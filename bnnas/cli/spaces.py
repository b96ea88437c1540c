"""``bnnas spaces``: list the built-in search spaces, or write one as a space file.

    bnnas spaces                                       # name, layers, subnets, input size, description
    bnnas spaces --dump spos-small-res                 # the space as YAML on stdout
    bnnas spaces --dump spos-small-res --out my.yaml   # ... as a file to edit, then: bnnas search --space my.yaml

A dumped file loads back to the same space (same layers, FLOPs and params for every arch); ``.json`` writes JSON.
docs/spaces.md describes every field.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.errors import BNNASError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dump", default=None, metavar="NAME", help="write this built-in space as a space file")
    p.add_argument("--out", default=None, help="with --dump: the file (.yaml/.yml/.json; default: YAML on stdout)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    flags.add(p, "debug")


def _listing() -> str:
    from bnnas.core.space import get_space, list_spaces

    rows = []
    for name in list_spaces():
        s = get_space(name)
        subnets = math.prod(len(layer.choices) for layer in s.layers)
        rows.append(f"{name:<26}{len(s.layers):>3} layers  {subnets:>9.3g} subnets  {s.input_size:>3}px  "
                    f"{s.description}")
    return "\n".join(rows)


def run(a: argparse.Namespace) -> None:
    from bnnas.core.space_file import dump_space, space_text

    if a.dump is None:
        if a.out is not None:
            raise BNNASError("--out needs --dump NAME")
        print(_listing())
        return
    out = None if a.out is None else Path(a.out)
    if out is not None and out.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise BNNASError(f"--out {out}: a space file ends in .yaml, .yml or .json")
    if out is not None and out.exists() and not a.force:
        raise BNNASError(f"--out {out} exists; pass --force to replace it")
    text = space_text(dump_space(a.dump), as_json=out is not None and out.suffix.lower() == ".json")
    if out is None:
        sys.stdout.write(text)
        return
    from bnnas.outputs.checkpoint import atomic_write_text

    atomic_write_text(out, text)
    print(f"wrote {out} (space {a.dump}); use it as --space {out}")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, argv)
