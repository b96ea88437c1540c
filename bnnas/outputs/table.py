"""Plain-text console tables: every column padded to its widest cell."""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(rows: Iterable[Sequence[object]], headers: Sequence[str], frame: bool = False) -> str:
    """``headers``, a ``-+-`` rule, then ``rows``, columns joined by `` | ``; ``frame``: the rule also above and
    below."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    rule = "-+-".join("-" * w for w in widths)
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, rule)
    if frame:
        lines = [rule, *lines, rule]
    return "\n".join(lines)


def markdown_table(rows: Iterable[Sequence[object]], headers: Sequence[str]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)
