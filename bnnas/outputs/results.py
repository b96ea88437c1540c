"""Search results named by what produced them, so a re-run with another budget, method or indicator adds its files
beside the earlier ones (``arch-470MFLOPs-exact.json``) instead of replacing them; ``arch.json``, ``summary.json``,
``report.md`` and the result plots are copies of the latest result (copies, not symlinks: they survive ``cp -r``
and file systems without links)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bnnas.outputs.checkpoint import atomic_write_bytes

log = logging.getLogger("bnnas")

LATEST = ("arch.json", "op_scores.png", "search.png", "report.md", "summary.json")  # summary last: it marks "done"


def result_tag(budget: float, unit: str, method: str, indicator: str) -> str:
    """``470MFLOPs-exact``; the indicator is added when it is not the default ``bn``."""
    tag = f"{budget:g}{unit}-{method}" + ("" if indicator == "bn" else f"-{indicator}")
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", tag)


def tagged(name: str, tag: str) -> str:
    """``arch.json`` -> ``arch-<tag>.json``."""
    p = Path(name)
    return f"{p.stem}-{tag}{p.suffix}"


def earlier_results(work_dir: Path, tag: str) -> list[str]:
    """Names of the tagged arch files of other searches in ``work_dir``."""
    mine = tagged("arch.json", tag)
    return sorted(p.name for p in Path(work_dir).glob("arch-*.json") if p.name != mine)


def announce(work_dir: Path, tag: str) -> None:
    """Say, before anything is written, whether this search adds a result or replaces one of the same settings."""
    mine = Path(work_dir) / tagged("arch.json", tag)
    if mine.exists():
        log.info("replacing the earlier result of the same budget and method: %s", mine.name)
    others = earlier_results(work_dir, tag)
    if others:
        log.info("earlier results of other budgets/methods stay beside it: %s", ", ".join(others))


def publish_latest(work_dir: Path, tag: str) -> list[Path]:
    """Copy this result's tagged files to the plain names (arch.json, ...), each atomically, summary.json last."""
    work_dir = Path(work_dir)
    done = []
    for name in LATEST:
        src = work_dir / tagged(name, tag)
        if src.is_file():
            done.append(atomic_write_bytes(work_dir / name, src.read_bytes()))
    log.info("result %s: %s are copies of it (the latest search)", tag, ", ".join(p.name for p in done))
    return done
