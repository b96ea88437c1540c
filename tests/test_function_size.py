"""House rule: no function in bnnas/ runs over 60 lines or takes more than 8 parameters (self/cls not counted), so a
newcomer can read each one whole and results travel as typed records rather than long argument lists."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "bnnas"
MAX_LINES, MAX_PARAMS = 60, 8


def oversized(source: str, name: str) -> list[str]:
    """'file:line name (N lines, M params)' for every def in ``source`` over a limit; lines run from ``def`` to the
    last line of the body."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ("self", "cls")]
            params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_LINES or len(params) > MAX_PARAMS:
                out.append(f"{name}:{node.lineno} {node.name} ({lines} lines, {len(params)} params)")
    return out


def test_no_function_is_over_the_limits():
    found = [o for p in sorted(ROOT.rglob("*.py")) for o in oversized(p.read_text(), str(p.relative_to(ROOT)))]
    assert not found, "split these or pass a record: " + "; ".join(found)


def test_the_check_catches_long_and_wide_functions():
    long_body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    source = (f"def long():\n{long_body}\n\n"
              "def wide(a, b, c, d, e, f, g, h, i):\n    pass\n\n"
              "class C:\n    def fine(self, a, b, c, d, e, f, g, h):\n        pass\n")
    assert oversized(source, "m.py") == [f"m.py:1 long ({MAX_LINES + 1} lines, 0 params)",
                                         f"m.py:{MAX_LINES + 3} wide (2 lines, 9 params)"]
