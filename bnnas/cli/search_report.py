"""What a search run writes into its work dir: plots, report.md, summary.json, and the console summary table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bnnas.cli.search_records import SearchOutcome, SearchSettings
from bnnas.core.arch import Arch
from bnnas.indicators.bn import ScoreTable
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.outputs.results import publish_latest, tagged
from bnnas.outputs.table import format_table
from bnnas.training.supernet_trainer import scores_from_record
from bnnas.trust.verdicts.early_bird import consecutive_similarity, settle_epoch, similarity_matrix


def write_outputs(work_dir: Path, settings: SearchSettings, outcome: SearchOutcome) -> dict:
    """Plots, report.md and summary.json (under the result's tag, then published as the latest); prints the table."""
    files, settled = _plots(work_dir, settings, outcome)
    summary = _summary(settings, outcome, files, settled)
    tag = outcome.tag
    atomic_write_text(work_dir / tagged("report.md", tag),
                      _report_md(summary, outcome.arch, outcome.bn_table, outcome.space))
    atomic_write_text(work_dir / tagged("summary.json", tag), json.dumps(summary, indent=2) + "\n")
    publish_latest(work_dir, tag)
    print(_summary_table(summary))
    return summary


def _plots(work_dir: Path, settings: SearchSettings, o: SearchOutcome) -> tuple[dict[str, str], int | None]:
    """Writes the plots (and the op-ranking similarity csv); returns the files by role, and the epoch the op ranking
    settled at (None if it did not, or with fewer than two epochs)."""
    import bnnas.outputs.plots as plots

    history, tag = o.train_info["history"], o.tag
    tables = [scores_from_record(h) for h in history]
    files = {"arch": tagged("arch.json", tag), "op_scores_plot": plots.plot_op_scores(
        o.bn_table.scores, [l.choices for l in o.space.layers], work_dir / tagged("op_scores.png", tag),
        o.arch.choices).name}
    settled = None
    if len(tables) >= 2:  # a similarity needs two epochs' rankings
        sim = similarity_matrix(tables)
        cons = consecutive_similarity(tables)
        settled = settle_epoch(cons, settings.eb_threshold, settings.eb_patience)
        files["early_bird_plot"] = plots.plot_similarity(sim, work_dir / "early_bird.png", settled).name
        np.savetxt(work_dir / "rank_similarity.csv", sim, delimiter=",", fmt="%.5f")
    if history:
        files["training_plot"] = plots.plot_training([h["epoch"] for h in history], [h["train_loss"] for h in history],
                                                     [h["train_acc"] for h in history], work_dir / "training.png").name
    results, b = o.results, o.budget
    hist = results["evolution"].history if "evolution" in results else next(iter(results.values())).history
    files["search_plot"] = plots.plot_search(hist, b.limit, {k: (r.cost, r.score) for k, r in results.items()},
                                             work_dir / tagged("search.png", tag), b.scale, b.unit).name
    return files, settled


def _summary(settings: SearchSettings, o: SearchOutcome, files: dict[str, str], settled: int | None) -> dict:
    """summary.json's content (its key order is the file's)."""
    arch, space, b = o.arch, o.space, o.budget
    return {
        "space": space.name, "arch": arch.ops, "flops_m": arch.meta["flops_m"], "params_m": arch.meta["params_m"],
        "bn_score": arch.meta["bn_score"], "budget": b.shown, "budget_unit": b.unit,
        "supernet_seconds": round(o.train_info["seconds"], 2), "epochs_trained": len(o.train_info["history"]),
        "stopped_early_at": o.train_info["stopped_early_at"], "ranking_settled_at": settled,
        "indicator": settings.indicator, "indicator_seconds": round(o.indicator_seconds, 4),
        "total_seconds": round(o.total_seconds, 2),
        "search": {k: {**r.summary(), "cost": r.cost / b.scale, "ops": [space.layers[i].choices[c]
                                                                        for i, c in enumerate(r.choices)]}
                   for k, r in o.results.items()},
        "files": files, "result": o.tag,
        "evidence": o.evidence.to_dict(), "data": arch.meta["found_by"]["data"], "seed": settings.seed,
        "benchmark": _published(arch, b.limit if b.unit == "MFLOPs" else None),
    }


def _summary_table(s: dict) -> str:
    rows = [(k, f"{r['score']:.4f}", f"{r['cost']:.3f}", str(r["evaluated"]), f"{r['seconds']:.4f}")
            for k, r in s["search"].items()]
    out = [f"\nBN-NAS search on {s['space']} -- budget {s['budget']:g} {s['budget_unit']}",
           format_table(rows, ("method", "score", s["budget_unit"], "subnets", "seconds"), frame=True),
           f"arch: {' '.join(s['arch'])}",
           f"FLOPs {s['flops_m']:.2f} M  params {s['params_m']:.3f} M  BN score {s['bn_score']:.4f}",
           f"supernet {s['epochs_trained']} epochs in {s['supernet_seconds']:.1f}s; total {s['total_seconds']:.1f}s"]
    out += _evidence_lines(s)
    return "\n".join(out) + "\n"


def _published(arch: Arch, budget: float | None) -> dict | None:
    """Where the space has a published table: the searched arch's accuracy there and its rank in the budget's band."""
    if arch.benchmark_key is None:
        return None
    from bnnas.benchmarks import load_benchmark
    from bnnas.trust.studies.benchmark.benchmark_stats import arch_in_table

    table = load_benchmark(arch.space.benchmark).restricted_to(arch.space)
    head = {"name": table.info.name, "dataset": table.info.dataset, "seeds": int(table.accs.shape[1]),
            "archs": len(table)}
    if arch.benchmark_key not in table.keys:  # our own tables hold a few keys only
        return {**head, "key": arch.benchmark_key, "acc": None}
    return {**head, **arch_in_table(arch.benchmark_key, table.keys, table.mean_acc, table.flops, budget)}


def _benchmark_line(b: dict, data: str) -> str:
    if b["acc"] is None:
        return f"this arch (key {b['key']}) is not among the {b['archs']} archs of the {b['name']} table"
    text = (f"{b['dataset']} accuracy of this arch in {b['name']} (key {b['key']}, {b['seeds']} seeds): "
            f"{b['acc']:.2f}%")
    if b.get("percentile") is not None:
        text += (f"; percentile {b['percentile']:.0f} among the {b['band_n']} archs of this space within 10% below "
                 f"the budget (best {b['band_best']:.2f}%, median {b['band_median']:.2f}%)")
    from bnnas.benchmarks import same_dataset

    return text + ("" if same_dataset(data, b["dataset"]) else f" -- searched on proxy data: {data}")


def _evidence_lines(s: dict) -> list[str]:
    """What the run says about its own trustworthiness, and the two commands that test the rest."""
    e = s["evidence"]
    lines = []
    if s.get("benchmark"):
        lines.append(_benchmark_line(s["benchmark"], str(s["data"])))
    if e["final_train_acc"] is not None:
        lines.append(f"supernet learned: {'yes' if e['learned'] else 'NO'} (final train accuracy "
                     f"{100 * e['final_train_acc']:.1f}%, chance {100 * e['chance']:.1f}%)")
    lines.append(f"op scores spread >= 0.05 in {e['spread_layers']}/{e['searchable_layers']} searchable layers")
    if e["warning"]:
        lines.append(e["warning"])
    lines += ["one run cannot say whether another seed would pick the same ops: until tools/stability.py on two or "
              "more seeds says they agree, treat this architecture as one sample",
              "another seed: rerun with --seed 1 --work-dir DIR2, then: python tools/stability.py RUN_DIR DIR2",
              "beats random?: python tools/verify.py --arch RUN_DIR/arch.json"]
    return lines


def _report_md(s: dict, arch: Arch, table: ScoreTable, space) -> str:
    lines = [f"# BN-NAS search report: {s['space']}", "",
             f"Budget: {s['budget']:g} {s['budget_unit']}. Indicator: `{s['indicator']}`. "
             f"Supernet: {s['epochs_trained']} epochs, {s['supernet_seconds']:.1f} s"
             + (f", stopped early at epoch {s['stopped_early_at']}" if s["stopped_early_at"] else "") + ".",
             f"Op ranking settled at epoch: {s['ranking_settled_at'] or 'not within the run'}.", "",
             "## Search", "", "| method | score | cost | subnets | seconds |", "|---|---|---|---|---|"]
    for k, r in s["search"].items():
        lines.append(f"| {k} | {r['score']:.4f} | {r['cost']:.3f} | {r['evaluated']} | {r['seconds']:.4f} |")
    lines += ["", f"## Chosen architecture ({s['flops_m']:.2f} MFLOPs, {s['params_m']:.3f} M params)", "",
              "| layer | op | in -> out | stride | BN score |", "|---|---|---|---|---|"]
    for i, (op, l, c) in enumerate(zip(arch.ops, space.layers, arch.choices)):
        lines.append(f"| {i} | {op} | {l.cin} -> {l.cout} | {l.stride} | {table.scores[i, c]:.4f} |")
    lines += ["", "## How far to trust this", ""] + [f"- {l}" for l in _evidence_lines(s)]
    lines += [""] + [f"![{k}]({v})" for k, v in s["files"].items() if v.endswith(".png")] + [""]
    return "\n".join(lines)
