"""The flags the tools share, each defined once: one spelling, one type, one meaning.

A tool adds them with ``add(group, "epochs", default=10, help=...)``: the option string and its type come from
here; the help and the default may say what the flag means for that tool. An older spelling of the same concept
stays accepted as a hidden alias that writes the same destination.
"""

from __future__ import annotations

import argparse
from typing import Any

import bnnas.cli.common as cli

DATA_HELP = ("fashion-mnist or digits (built in), or an ImageNet-style folder (train/<class>/*.JPEG, optional "
             "val/<class>/); default: Fashion-MNIST when installed, else digits")
THREADS_HELP = ("CPU threads for torch, 0: torch's choice (default: 1 on the built-in 32 px data on CPU, where the "
                "tiny convs run faster single-threaded; else torch's choice)")

_SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "data": ("--data", {"default": None, "help": DATA_HELP}),
    "work-dir": ("--work-dir", {"default": None, "help": "output directory, locked while a run uses it"}),
    "device": ("--device", {"type": cli.device, "default": None,
                            "help": "cpu, cuda, cuda:1 (default: cuda if available)"}),
    "seed": ("--seed", {"type": cli.nonneg_int, "default": 0, "help": "random seed"}),
    "threads": ("--threads", {"type": cli.nonneg_int, "default": None, "help": THREADS_HELP}),
    "workers": ("--workers", {"type": cli.nonneg_int, "default": None,
                              "help": "data loader workers (default: 0 on built-in data, 8 on a folder)"}),
    "batch-size": ("--batch-size", {"type": cli.positive_int, "default": None, "help": "per-process batch"}),
    "epochs": ("--epochs", {"type": cli.positive_int, "default": None, "help": "training epochs"}),
    "lr": ("--lr", {"type": cli.positive_float, "default": None, "help": "peak learning rate"}),
    "limit-train": ("--limit-train", {"type": cli.positive_int, "default": None,
                                      "help": "train on this many training images (the same ones for every seed)"}),
    "quiet": ("--quiet", {"action": "store_true",
                          "help": "no progress bars on a terminal, no step lines in a log"}),
    "debug": ("--debug", {"action": "store_true", "help": "show the full traceback of an error"}),
}
NAMES = tuple(_SPECS)


def add(group: Any, name: str, *, aliases: tuple[str, ...] = (), **overrides: Any) -> argparse.Action:
    """Add the shared flag ``name`` to a parser or argument group; ``aliases`` are accepted but not shown."""
    option, spec = _SPECS[name]
    kwargs = {**spec, **overrides}
    action = group.add_argument(option, **kwargs)
    hidden = {k: v for k, v in kwargs.items() if k not in ("help", "default", "metavar")}
    for old in aliases:
        # SUPPRESS as default: the primary flag's default stays the one the namespace gets
        group.add_argument(old, dest=action.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **hidden)
    return action


def add_run(group: Any, work_dir: str, *names: str) -> None:
    """``--work-dir`` with this tool's default, then the other named shared flags in the given order."""
    add(group, "work-dir", default=work_dir)
    for name in names:
        add(group, name)
