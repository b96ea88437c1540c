"""Shared command-line plumbing: number/device checks at parse time and one-line errors (exit code 2) for every tool.

Every ``type=`` helper raises ``argparse.ArgumentTypeError``, so a bad value stops the tool while parsing, before a
work dir, a log or a checkpoint is created. ``run_cli`` turns the failures a user can fix (``BNNASError``, ``OSError``,
out of memory) into ``error: ...`` on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import sys
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except ``None`` (the help text says what happens then) and a switch's ``False``."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class RawHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """As ``HelpFormatter``, with the description printed as written (a module docstring with examples)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line ``error: ...`` (exit code 2) instead of the usage block plus the message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(kind: type, text: str) -> Any:
    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return v


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        v = _number(int, text)
        if v < low:
            raise argparse.ArgumentTypeError(f"must be >= {low} (got {v})")
        return v

    parse.__name__ = f"int>={low}"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def positive_float(text: str) -> float:
    v = _number(float, text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {v:g})")
    return v


def nonneg_float(text: str) -> float:
    v = _number(float, text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {v:g})")
    return v


def unit_float(text: str) -> float:
    """A fraction in (0, 1]."""
    v = _number(float, text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (got {v:g})")
    return v


def fraction(text: str) -> float:
    """A fraction in [0, 1]."""
    v = _number(float, text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] (got {v:g})")
    return v


def positive_float_list(text: str) -> list[float]:
    """Comma-separated values, each > 0 and finite (e.g. ``--budgets 5,10,20``)."""
    vals = [positive_float(t.strip()) for t in text.split(",") if t.strip()]
    if not vals:
        raise argparse.ArgumentTypeError("needs at least one value")
    return vals


def device(text: str) -> str:
    """A device this machine has: ``cpu``, ``cuda``, ``cuda:N`` (N < GPU count) or ``mps``."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r} (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available here (use --device cpu)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise argparse.ArgumentTypeError(f"{text}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise argparse.ArgumentTypeError(f"{text}: MPS is not available here (use --device cpu)")
    elif dev.type != "cpu":
        raise argparse.ArgumentTypeError(f"unsupported device {text!r} (use cpu, cuda or cuda:N)")
    return text


def set_threads(threads: int | None, data: str | None, device: Any) -> None:
    """Apply --threads; unset, 1 on the built-in 32 px data on CPU (its tiny convs run faster single-threaded)."""
    import torch

    from bnnas.cli.defaults import default_threads

    n = default_threads(data, device) if threads is None else threads
    if n:  # 0 or None: torch's own choice
        torch.set_num_threads(n)


def format_error(e: BaseException) -> str:
    """One line, also for errors re-raised from DataLoader workers (whose message carries a traceback)."""
    if isinstance(e, OSError) and e.strerror:
        where = f": {e.filename}" if e.filename is not None else ""
        if getattr(e, "filename2", None) is not None:
            where += f" -> {e.filename2}"
        return f"{e.strerror}{where}"
    msg = str(e).strip()
    if "Traceback" in msg:
        msg = msg.splitlines()[-1]
        msg = msg.split("BNNASError: ", 1)[-1]
    return msg.splitlines()[0] if msg else type(e).__name__


def expected_errors() -> tuple[type[BaseException], ...]:
    """Failures a user can act on: our own errors, file-system errors, running out of (GPU) memory."""
    import torch

    from bnnas.errors import BNNASError

    return (BNNASError, OSError, MemoryError, torch.OutOfMemoryError)


def with_default_command(argv: list[str], default: str) -> list[str]:
    """``argv`` with ``default`` put first when it starts with an option (``tool --k 3`` = ``tool rank --k 3``)."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        return [default, *argv]
    return argv


def with_exit_stack(body: Callable[[argparse.Namespace, contextlib.ExitStack], T]) -> Callable[[argparse.Namespace], T]:
    """``body(args, stack)`` as a command's ``run(args)``: what it puts on the stack (the work-dir lock) is released
    however it ends."""
    @functools.wraps(body)
    def run(args: argparse.Namespace) -> T:
        with contextlib.ExitStack() as stack:
            return body(args, stack)
    return run


def command_parser(add_arguments: Callable[[argparse.ArgumentParser], None], description: str | None,
                   raw: bool = False) -> ArgumentParser:
    """A standalone parser for one command (its ``tools/*.py`` script); ``raw`` keeps the description's layout."""
    p = ArgumentParser(description=description, formatter_class=RawHelpFormatter if raw else HelpFormatter)
    add_arguments(p)
    return p


def main(parser: argparse.ArgumentParser, fn: Callable[[argparse.Namespace], Any], argv: list[str] | None) -> int:
    """Parse (a bad value returns its exit code instead of raising SystemExit, for in-process callers) and run."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return run_cli(fn, args)


def run_cli(fn: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """Call ``fn(args)``; a user-fixable failure becomes one ``error:`` line on stderr and exit code 2."""
    if getattr(args, "debug", False):
        fn(args)
        return 0
    try:
        fn(args)
    except expected_errors() as e:
        import torch

        hint = " (out of memory: lower --batch-size)" if isinstance(e, (MemoryError, torch.OutOfMemoryError)) else ""
        print(f"error: {format_error(e)}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0
