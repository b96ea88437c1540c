"""What the ranking study (:mod:`bnnas.trust.studies.correlation.correlation`) writes and prints: one scatter per
indicator, ``correlation.md`` and the console table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnas.outputs.checkpoint import atomic_write_text


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def ci_str(ci: list[float] | None) -> str:
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def proxy_str(p: dict) -> str:
    return (f"{p['epochs']} epochs, batch {p['batch_size']}, LR {p['lr']} cosine, "
            f"{p['repeats']} seed{'s' if p['repeats'] > 1 else ''}")


def write_study_outputs(doc: dict, work_dir: Path) -> dict:
    """One scatter PNG per indicator and ``correlation.md``; returns the files written (indicator or "report" ->
    file name)."""
    from bnnas.outputs.plots import plot_indicator_scatter  # matplotlib loads only when a study writes its plots

    files = {}
    acc = np.array([s["acc"] for s in doc["subnets"]])
    flops = np.array([s["flops_m"] for s in doc["subnets"]])
    for spec, res in doc["indicators"].items():
        fname = f"scatter_{spec.replace('@', '_at_')}.png"
        plot_indicator_scatter(spec, res, acc, flops, doc["k"], work_dir / fname)
        files[spec] = fname
    md = _md_head(doc) + _md_seed_agreement(doc) + _md_indicators(doc) + _md_supernets_and_subnets(doc)
    md += [""] + [f"![{k}]({v})" for k, v in files.items()] + [""]
    atomic_write_text(work_dir / "correlation.md", "\n".join(md))
    files["report"] = "correlation.md"
    return files


def _md_head(doc: dict) -> list[str]:
    return [f"# Indicator ranking study: {doc['space']} on {doc['data']}", "",
            f"K = {doc['k']} subnets stratified over {doc['flops_range_m'][0]:.2f}-{doc['flops_range_m'][1]:.2f} "
            "MFLOPs, "
            f"each trained from scratch ({proxy_str(doc['ground_truth']['proxy'])}) and evaluated on "
            f"{doc['ground_truth']['val_images']} val images. Wall time {doc['wall_seconds']:.0f} s.", "",
            "Brackets: bootstrap 95 % CI (K subnets resampled with replacement, percentile); a CI that spans 0 means "
            "this K cannot tell the indicator from a random ranking.", ""]


def _md_seed_agreement(doc: dict) -> list[str]:
    sa = doc["ground_truth"].get("seed_agreement")
    if not sa:
        return ["Ground truth vs itself: not measured (run with --proxy-repeats 2 or more).", ""]
    return [f"Ground truth vs itself ({sa['repeats']} training seeds, mean over seed pairs): Kendall tau "
            f"{fmt(sa['kendall_tau'])} {ci_str(sa.get('kendall_tau_ci'))}, Spearman rho {fmt(sa['spearman_rho'])} "
            f"{ci_str(sa.get('spearman_rho_ci'))}; mean seed std {100 * sa['mean_seed_std']:.2f} points vs "
            f"{100 * sa['spread_of_means']:.2f} points between best and worst subnet. No indicator can be trusted "
            "to rank better than this.", ""]


def _md_indicators(doc: dict) -> list[str]:
    md = ["| indicator | Kendall tau (p) [95 % CI] | Spearman rho (p) [95 % CI] | supernet epochs | supernet s | "
          "score K s | search-1000 s |", "|---|---|---|---|---|---|---|"]
    for spec, r in doc["indicators"].items():
        key = next(k for k in r if k.startswith("search_") and k.endswith("_seconds"))
        md.append(f"| {spec} | {fmt(r['kendall_tau'])} ({fmt(r['kendall_p'], 2)}) {ci_str(r.get('kendall_tau_ci'))} "
                  f"| {fmt(r['spearman_rho'])} ({fmt(r['spearman_p'], 2)}) {ci_str(r.get('spearman_rho_ci'))} | "
                  f"{r['supernet_epochs']} | {r['supernet_seconds']:.0f} | "
                  f"{r['score_seconds']:.2f} | {r[key]:.2f}{'' if r['search_seconds_measured'] else ' (est.)'} |")
    return md


def _md_supernets_and_subnets(doc: dict) -> list[str]:
    md = ["", "Ranking stability of the supernets (early-bird: op-score ranks of consecutive epochs):", ""]
    for k, s in doc["supernets"].items():
        md.append(f"- {k}: {s['epochs']} epochs, ranking settled at epoch {s['ranking']['settled_at']}")
    md += ["", "| # | MFLOPs | val acc | ops |", "|---|---|---|---|"]
    for i, s in enumerate(doc["subnets"]):
        md.append(f"| {i} | {s['flops_m']:.2f} | {100 * s['acc']:.2f} | {' '.join(s['ops'])} |")
    return md


def print_table(doc: dict) -> str:
    """The console summary of a study: tau and rho with their CIs, and the cost of each indicator."""
    from bnnas.outputs.table import format_table

    rows = []
    sa = doc["ground_truth"].get("seed_agreement")
    if sa:
        rows.append((f"(ground truth, {sa['repeats']} seeds)", fmt(sa["kendall_tau"]), ci_str(sa.get("kendall_tau_ci")),
                     fmt(sa["spearman_rho"]), ci_str(sa.get("spearman_rho_ci")), "-", "-", "-"))
    for spec, r in doc["indicators"].items():
        rows.append((spec, fmt(r["kendall_tau"]), ci_str(r.get("kendall_tau_ci")), fmt(r["spearman_rho"]),
                     ci_str(r.get("spearman_rho_ci")), str(r["supernet_epochs"]),
                     f"{r['supernet_seconds']:.0f}", f"{r['score_seconds']:.2f}"))
    return format_table(rows, ("indicator", "tau", "tau 95% CI", "rho", "rho 95% CI", "sup. epochs", "sup. s",
                               "score s"))
