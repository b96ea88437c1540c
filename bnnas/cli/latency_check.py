"""``bnnas latency-check``: how well does the per-op latency table predict whole networks?

    bnnas latency-check --space spos-small-res --runtime onnxruntime --archs 50 --work-dir runs/latency_check

Measures the space's per-op table (as ``bnnas search --latency`` does, cached in WORK_DIR), then ``--archs`` random
subnets end to end in the same runtime, and reports the table's error: median and 90th percentile of
|predicted - measured| / measured, and Kendall's tau between predicted and measured. When the sum is biased (80% of
archs or more on one side), it fits a per-network offset (median of measured - predicted), shows the error with it
(2-fold cross-fitted), and stores it in the table file, so ``bnnas search --latency MS --work-dir WORK_DIR`` (same
runtime, threads, space) predicts with it. Everything is written to WORK_DIR/latency_check-RUNTIME.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bnnas.cli.common as cli
import bnnas.cli.flags as flags


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", required=True, help="search space name or space file (.yaml/.json)")
    p.add_argument("--runtime", choices=["torch", "onnxruntime"], default="torch", help="where ops and nets run")
    p.add_argument("--archs", type=cli.int_at_least(4), default=50, help="random subnets measured end to end")
    p.add_argument("--max-seconds", type=cli.positive_float, default=20.0,
                   help="timing cap of the table and of the networks, each (noise handling as in search)")
    p.add_argument("--budget-ms", type=cli.positive_float, default=None,
                   help="also pick the arch the (offset) table predicts slowest within this budget and measure it")
    flags.add(p, "threads", default=1, help="intra-op threads of the runtime (1: one inference stream, the least "
                                            "noisy on a shared CPU; 0: torch's current setting)")
    flags.add_run(p, "runs/latency_check", "seed")
    flags.add(p, "debug")


def _measure(a: argparse.Namespace) -> dict:
    """The table (cached), the archs' predictions and measurements."""
    import torch

    from bnnas.cli.search import latency_cache_name
    from bnnas.core.latency import TimingSettings, measure_latency_table
    from bnnas.core.latency_check import measure_networks, predictions, random_choices
    from bnnas.core.space import get_space

    space = get_space(a.space)
    a.threads = a.threads or torch.get_num_threads()
    torch.set_num_threads(a.threads)
    timing = TimingSettings(max_seconds=a.max_seconds, threads=a.threads)
    cache = Path(a.work_dir) / latency_cache_name(a.runtime)
    table = measure_latency_table(space, "cpu", cache=cache, timing=timing, runtime=a.runtime)
    choices = random_choices(space, a.archs, a.seed)
    measured = measure_networks(space, choices, timing, a.threads, a.runtime)
    return {"space": space, "table": table, "cache": cache, "choices": choices,
            "predicted": predictions(table, choices) - table.offset, "measured": measured}


def run(a: argparse.Namespace) -> dict:
    from bnnas.core.latency import store_offset
    from bnnas.core.latency_check import cross_fitted, fit_offset, is_biased, prediction_errors
    from bnnas.outputs.checkpoint import atomic_write_text

    Path(a.work_dir).mkdir(parents=True, exist_ok=True)
    m = _measure(a)
    pred, meas = m["predicted"], m["measured"]  # the plain per-op sum, without any earlier offset
    before = prediction_errors(pred, meas)
    doc = {"space": m["space"].name, "runtime": a.runtime, "threads": a.threads, "archs": len(meas),
           "input_size": m["space"].input_size, "errors": before.to_dict(), "biased": is_biased(pred, meas),
           "offset_ms": None, "errors_with_offset": None,
           "per_arch": [{"choices": list(c), "predicted_ms": p * 1e3, "measured_ms": t * 1e3}
                        for c, p, t in zip(m["choices"], pred, meas)]}
    lines = [f"{m['space'].name}, {a.runtime}, {a.threads} thread(s), {len(meas)} random archs: measured "
             f"{1e3 * meas.min():.3f}-{1e3 * meas.max():.3f} ms", _describe("per-op sum", before)]
    if doc["biased"]:
        offset = fit_offset(pred, meas)
        after = prediction_errors(cross_fitted(pred, meas), meas)
        store_offset(m["cache"], m["table"], offset)
        doc.update(offset_ms=offset * 1e3, errors_with_offset=after.to_dict())
        lines.append(_describe(f"sum {offset * 1e3:+.4f} ms offset (2-fold cross-fitted)", after))
        lines.append(f"offset stored in {m['cache']}: searches with this table predict with it")
    if a.budget_ms is not None:
        doc["budget_check"] = _budget_check(a, m, doc["offset_ms"] or 0.0, lines)
    out = Path(a.work_dir) / f"latency_check-{a.runtime}.json"
    atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    print("\n".join(lines + [f"wrote {out}"]))
    return doc


def _budget_check(a: argparse.Namespace, m: dict, offset_ms: float, lines: list[str]) -> dict | None:
    """Measure the arch a search spending ``--budget-ms`` would get from the table (with its offset)."""
    from bnnas.core.latency import TimingSettings
    from bnnas.core.latency_check import arch_at_budget, measure_networks

    table, budget = m["table"], a.budget_ms / 1e3
    base = table.base - table.offset + offset_ms / 1e3
    shifted = type(table)(table.per_op, base, table.unit, table.spread, table.base_spread, table.passes)
    choices = arch_at_budget(m["space"], shifted, budget, a.seed)
    if choices is None:
        lines.append(f"  no arch is predicted within {a.budget_ms} ms")
        return None
    pred = shifted.of(choices)
    timing = TimingSettings(max_seconds=a.max_seconds, threads=a.threads)
    meas = float(measure_networks(m["space"], [choices], timing, a.threads, a.runtime)[0])
    lines.append(f"  budget {a.budget_ms} ms: arch predicted {pred * 1e3:.4f} ms, measured {meas * 1e3:.4f} ms "
                 f"({100 * (meas / budget - 1):+.1f}% of the budget)")
    return {"choices": list(choices), "budget_ms": a.budget_ms, "predicted_ms": pred * 1e3, "measured_ms": meas * 1e3}


def _describe(what: str, e: object) -> str:
    return (f"  {what:<44} |pred-meas|/meas median {100 * e.median:5.1f}%  p90 {100 * e.p90:5.1f}%  "
            f"Kendall tau {e.kendall_tau:.3f}  mean signed {100 * e.mean_signed:+.1f}%")


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, __doc__, raw=True)


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, argv)
