"""``bnnas bench``: the benchmark table of bench/run.py, which lives in a source checkout (it is not installed)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.errors import BNNASError

DESCRIPTION = "bnnas benchmark: one command, six rows, our numbers beside the anchors (see docs/benchmarks.md)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """bench/run.py's flags (it parses with this too)."""
    p.add_argument("--rows", default="1,2,3,4,5,6", help="comma-separated rows")
    p.add_argument("--quick", action="store_true", help="small sizes, few repetitions (smoke run)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto: CUDA if present; cuda on a machine without one runs the CPU rows and skips the rest")
    p.add_argument("--compile", action="store_true", help="torch.compile models in rows 1, 2, 5")
    flags.add(p, "workers", help="loader workers for row 4 (default: min(16, cores))")
    p.add_argument("--jpeg-dir", default=None,
                   help="row 4: an ImageNet-style folder to read instead of generated JPEGs")
    flags.add(p, "threads", help="torch CPU threads (default: all cores, or 1 when the machine is already busy: "
                                 "OpenMP threads spin-waiting for a descheduled sibling make a step several times "
                                 "slower)")
    p.add_argument("--json", default=None, help="write raw results here")
    flags.add(p, "debug")


def bench_script() -> Path:
    """bench/run.py of the checkout this bnnas was imported from."""
    script = Path(__file__).resolve().parents[2] / "bench" / "run.py"
    if not script.is_file():
        raise BNNASError(f"bnnas bench runs bench/run.py from a source checkout, and there is none at {script}")
    return script


def run(args: argparse.Namespace) -> None:
    script = bench_script()
    # bench's modules import each other by bare name, as when bench/run.py is run as a script
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location("bnnas_bench_run", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        module.run(args, " ".join(["bnnas", *sys.argv[1:]]))
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(script.parent))


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="bnnas bench", description=DESCRIPTION)
    add_arguments(p)
    return p
