"""``bnnas <command>``: one entry point for every tool (``python -m bnnas`` works the same).

Each command reuses its module's ``add_arguments``, the same definitions that serve the ``tools/*.py`` scripts.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import bnnas.cli.common as cli

# command -> (module under bnnas.cli, one-line summary); the order is the one --help lists
COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("search", "train a BN-only supernet, search a subnet under a budget"),
    "retrain": ("retrain", "retrain a searched arch from scratch and evaluate it"),
    "export": ("export", "export a retrained subnet's backbone for mmdet"),
    "export-onnx": ("export_onnx", "export a searched network (or its detector) to ONNX, checked in onnxruntime"),
    "verify": ("verify", "does the searched arch beat random archs of its budget?"),
    "stability": ("stability", "do search runs that differ only in their seed agree?"),
    "ground-truth": ("ground_truth", "train archs of a benchmark space on built-in data; write the table"),
    "correlate": ("trust", "indicator vs trained accuracy; early-bird stop vs full run"),
    "bias": ("trust", "conv share picked in the biased vs unbiased space"),
    "bench": ("bench", "the benchmark table (bench/run.py of a checkout)"),
    "demo-data": ("demo_data", "write the built-in COCO-format digits detection set"),
    "det-complexity": ("det_complexity", "conv MACs and parameters of a detector config"),
    "det": ("det", "mim train|test mmdet, ending with a one-line error"),
    "latency-check": ("latency_check", "how well the per-op latency table predicts whole networks"),
    "spaces": ("spaces", "list the built-in search spaces; --dump one as a space file"),
}
PASS_THROUGH = {"det"}  # every argument belongs to the wrapped tool (mim), so argparse must not read them
CORRELATE_STUDIES = ("rank", "early-bird")


def _add_command(sub: argparse._SubParsersAction, name: str) -> None:
    module_name, summary = COMMANDS[name]
    module = importlib.import_module(f"bnnas.cli.{module_name}")
    if name in PASS_THROUGH:
        sub.add_parser(name, help=summary, add_help=False)
        return
    if name == "correlate":
        p = sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]} (rank when no "
                                                            "study is named).")
        module.add_commands(p.add_subparsers(dest="study", metavar="STUDY", required=True,
                                             parser_class=cli.ArgumentParser), CORRELATE_STUDIES)
        return
    if name == "bias":
        module.add_commands(sub, ("bias",))
        return
    if hasattr(module, "DESCRIPTION"):
        p = sub.add_parser(name, help=summary, description=module.DESCRIPTION)
    else:  # the module docstring, with its example commands kept as written
        p = sub.add_parser(name, help=summary, description=module.__doc__, formatter_class=cli.RawHelpFormatter)
    module.add_arguments(p)
    p.set_defaults(handler=module.run)


def _command_list() -> str:
    width = max(map(len, COMMANDS)) + 2
    lines = [f"  {name:<{width}}{summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(["commands:", *lines, "", "bnnas COMMAND --help shows a command's flags."])


def build_parser() -> argparse.ArgumentParser:
    from bnnas import __version__

    # the command list is written out (one line each) rather than argparse's, which wraps long names onto two lines
    p = cli.ArgumentParser(prog="bnnas", usage="%(prog)s [-h] [--version] COMMAND ...",
                           formatter_class=cli.RawHelpFormatter, epilog=_command_list(),
                           description="BN-NAS: BN-only supernets, BN-indicator search, retraining, and transfer\n"
                                       "to detection.")
    p.add_argument("--version", action="version", version=f"bnnas {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=cli.ArgumentParser,
                           prog="bnnas", help=argparse.SUPPRESS)
    for name in COMMANDS:
        _add_command(sub, name)
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``bnnas`` console script: parse ``argv``, run the command, return its exit code (2: one ``error:`` line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_THROUGH:
        module = importlib.import_module(f"bnnas.cli.{COMMANDS[argv[0]][0]}")
        return module.main(argv[1:])
    if argv and argv[0] == "correlate":
        argv = [argv[0], *cli.with_default_command(argv[1:], CORRELATE_STUDIES[0])]
    return cli.main(build_parser(), lambda args: args.handler(args), argv)
