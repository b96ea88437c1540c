"""Indicators against a published benchmark table (``bnnas correlate --benchmark NAME``).

The ground truth is the table's mean accuracy, read instead of retrained. Additive indicators (BN, the baselines)
score every key at once; per-subnet ones (spos-acc, naswot, synflow) a FLOPs-stratified sample of keys. Each is
measured over all the table's keys as published and over its distinct networks (:mod:`bnnas.benchmarks`), by
:mod:`bnnas.trust.studies.benchmark.benchmark_stats`: tau and rho, the mean tau inside FLOPs deciles, and the
budgeted pick.

The supernets train on ``data``. When that is not the data the table was trained on (here: Fashion-MNIST for a
CIFAR-10 table), every output says "proxy data": a tau then mixes the indicator's quality with the domain shift.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bnnas.benchmarks import BenchmarkTable, load_benchmark, same_dataset
from bnnas.core.space import get_space
from bnnas.data import ClassificationData
from bnnas.errors import BNNASError
from bnnas.indicators.registry import BASELINES, STRUCTURAL
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.outputs.table import markdown_table
from bnnas.training.distributed import DistInfo
from bnnas.trust.studies.benchmark.benchmark_stats import (BAND, BUDGET_QUANTILES, bootstrap_ranking_stats,
                                                          budgeted_pick, ranking_stats)
from bnnas.trust.studies.study_config import StudyConfig
from bnnas.trust.studies.indicator_scoring import parse_indicator_spec, score_indicator
from bnnas.trust.rank_stats import bootstrap_ci, kendall_tau
from bnnas.trust.studies.study_supernets import obtain_supernets
from bnnas.trust.studies.benchmark.table_quality import table_quality

log = logging.getLogger("bnnas")

FORMAT = "bnnas.correlation-benchmark/1"
DEFAULT_INDICATORS = ("bn@bn", "bn@bnall", "spos-acc@all", "synflow@init", "naswot@init")
BOOTSTRAP_RESAMPLES = 300  # each resample ranks thousands of archs; 300 keeps a 3-baseline run under a minute
NEEDS_IMAGES = ("spos-acc", "naswot")  # besides the trained supernets: these read images when scoring


@dataclass
class BenchmarkStudyConfig:
    study: StudyConfig = field(default_factory=StudyConfig)  # indicators, supernets, scoring options, seed
    sample: int = 200  # keys a per-subnet indicator scores


def data_role(table: BenchmarkTable, data: ClassificationData | None) -> str:
    """``in-domain`` when the supernets train on the table's own data set, else ``proxy data: NAME``."""
    if data is None:
        return "data-free"
    return "in-domain" if same_dataset(data.name, table.info.dataset) else f"proxy data: {data.name}"


def indicator_specs(requested: tuple[str, ...]) -> tuple[str, ...]:
    """The requested indicators plus every baseline (they are always in the table), each once."""
    return tuple(dict.fromkeys([*requested, *BASELINES]))


def needs_data(specs: tuple[str, ...]) -> bool:
    parsed = [parse_indicator_spec(s) for s in specs]
    return any(sup not in (None, "init") or name in NEEDS_IMAGES for name, sup in parsed)


def stratified_rows(table: BenchmarkTable, n: int, seed: int) -> np.ndarray:
    """``n`` rows spread over FLOPs: the keys sorted by FLOPs, cut into ``n`` equal-count bins, one row per bin."""
    if n >= len(table):
        return np.arange(len(table))
    order = np.argsort(table.flops, kind="stable")
    bins = np.array_split(order, n)
    rng = np.random.default_rng([seed, 7])
    return np.sort([int(rng.choice(b)) for b in bins])


def _measure(scores: np.ndarray, table: BenchmarkTable, rows: np.ndarray, resamples: int, seed: int) -> dict:
    """The statistics over all the keys in ``rows`` and over those that are distinct networks."""
    out = {}
    for name, keep in (("all_keys", np.ones(len(rows), dtype=bool)), ("distinct", table.distinct[rows])):
        s, r = scores[keep], rows[keep]
        res = ranking_stats(s, table.mean_acc[r], table.flops[r])
        if resamples:
            res["ci"] = bootstrap_ranking_stats(s, table.mean_acc[r], table.flops[r], resamples, seed)
        out[name] = res
    band = table.band[rows]
    if band.sum() >= 3:  # our own tables: how the indicator ranks the archs of one budget
        s, acc = scores[band], table.mean_acc[rows[band]]
        out["band"] = {"n": int(band.sum()), "kendall_tau": kendall_tau(s, acc),
                       "pick": budgeted_pick(s, acc, np.ones(len(s), dtype=bool)),
                       **bootstrap_ci([(s, acc)], resamples, seed)}
    return out


def run_benchmark_study(table: BenchmarkTable, data: ClassificationData | None, cfg: BenchmarkStudyConfig,
                        work_dir: Path, device: torch.device, dist: DistInfo = DistInfo(),
                        quiet: bool = True) -> dict | None:
    """Score the table's archs with every indicator and compare with its accuracies; rank 0 returns the document."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    study = cfg.study
    specs = indicator_specs(study.indicators)
    wanted = [parse_indicator_spec(s) for s in specs]
    if data is None and needs_data(specs):
        raise BNNASError("an indicator in --indicators trains a supernet or reads images: pass --data")
    space = get_space(table.space.name, None if data is None else data.num_classes)
    supernets = obtain_supernets(space, data, study, {sup for _, sup in wanted if sup}, work_dir, device, dist,
                                 quiet)
    if not dist.is_main:
        return None
    sample = stratified_rows(table, cfg.sample, study.seed)
    indicators = {}
    for spec, (name, sup) in zip(specs, wanted):
        model, info = supernets[sup] if sup else (None, None)
        additive = sup is None or name == "bn"
        rows = np.arange(len(table)) if additive else sample
        res = score_indicator(name, model, space, table.choices[rows], data, device, study)
        scores = np.asarray(res.pop("scores"))
        res.update(rows=int(len(rows)), supernet=sup, supernet_epochs=info["epochs"] if info else 0,
                   supernet_seconds=info["seconds"] if info else 0.0)
        res.update(_measure(scores, table, rows, study.bootstrap_resamples, study.seed))
        indicators[spec] = res
        a = res["all_keys"]
        log.info("%-14s tau %+.3f  decile tau %+.3f  picks %s", spec, a["kendall_tau"], a["decile_tau"],
                 " ".join(f"{b['pick_percentile']:.0f}" for b in a["budgets"] if b["pick_percentile"] is not None))
    indicators, strongest = against_structural(indicators)
    doc = {
        "format": FORMAT, "benchmark": table.info.name, "strongest_structural": strongest,
        "source": table.info.source, "licence": table.info.licence,
        "ground_truth": _ground_truth_line(table),
        "space": space.name, "data": None if data is None else data.name, "data_role": data_role(table, data),
        "keys": len(table), "distinct_networks": int(table.distinct.sum()), "sample": int(len(sample)),
        "budget_quantiles": list(BUDGET_QUANTILES), "band": BAND, "seed": study.seed,
        "bootstrap_resamples": study.bootstrap_resamples, "device": str(device),
        "supernets": {k: {kk: vv for kk, vv in i.items() if kk != "history"} for k, (_, i) in supernets.items()},
        "indicators": indicators, "wall_seconds": time.perf_counter() - t_all,
    }
    if table.groups:
        ref = load_benchmark(table.info.reference) if table.info.reference else None
        doc["table_quality"] = table_quality(table, ref, study.bootstrap_resamples, study.seed)
        doc["table_points"] = {"keys": list(table.keys), "flops": table.flops.tolist(), "band": table.band.tolist(),
                               "accs": [[None if np.isnan(a) else float(a) for a in row] for row in table.accs]}
    doc["files"] = write_outputs(doc, work_dir)
    atomic_write_text(work_dir / "correlation.json", json.dumps(doc, indent=2) + "\n")
    return doc


def against_structural(indicators: dict[str, dict]) -> tuple[dict[str, dict], str | None]:
    """The strongest structural rule (highest decile tau over all keys) first, and every other indicator marked with
    whether its decile-tau CI clears that rule's decile tau (the point estimate where there is no CI)."""
    rules = [s for s in indicators if s in STRUCTURAL]
    if not rules:
        return indicators, None
    best = max(rules, key=lambda s: indicators[s]["all_keys"]["decile_tau"])
    bar = indicators[best]["all_keys"]["decile_tau"]
    for spec, res in indicators.items():
        if spec not in STRUCTURAL:
            a = res["all_keys"]
            low = (a.get("ci", {}).get("decile_tau_ci") or [a["decile_tau"]])[0]
            res["clears_structural"] = bool(np.isfinite(low) and low > bar)
    return {best: indicators[best], **{k: v for k, v in indicators.items() if k != best}}, best


def _ground_truth_line(table: BenchmarkTable) -> str:
    if table.groups:
        return (f"mean final test top-1 over up to {table.accs.shape[1]} seeds on {table.info.dataset} (our own "
                f"table, {table.info.source}; {int(table.band.sum())} keys inside one FLOPs band)")
    return f"mean test top-1 over {table.accs.shape[1]} seeds on {table.info.dataset} (the published table)"


# -- outputs ---------------------------------------------------------------------------------------------------------
def _ci(ci, digits: int = 2, pct: bool = False) -> str:
    if ci is None:
        return "[n/a]"
    return f"[{ci[0]:.0f}, {ci[1]:.0f}]" if pct else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:+.{digits}f}"


def table_rows(doc: dict, which: str = "all_keys") -> list[tuple[str, ...]]:
    """One row per indicator: tau, within-decile tau and the three budgeted-pick percentiles, with CIs, and cost;
    for our own tables (a handful of keys, one band) tau overall and inside the band instead."""
    if "table_quality" in doc:
        return band_rows(doc)
    rows = []
    for spec, r in doc["indicators"].items():
        m, ci = r[which], r[which].get("ci", {})
        picks = []
        for j, b in enumerate(m["budgets"]):
            pci = ci.get("pick_percentile_ci", [None] * len(m["budgets"]))[j]
            picks.append("n/a" if b["pick_percentile"] is None else f"{b['pick_percentile']:.0f} {_ci(pci, pct=True)}")
        rows.append((spec, str(m["n"]), f"{_num(m['kendall_tau'])} {_ci(ci.get('kendall_tau_ci'))}",
                     f"{_num(m['decile_tau'])} {_ci(ci.get('decile_tau_ci'))}", *picks, _cost(r), _verdict(doc, spec, r)))
    return rows


def _verdict(doc: dict, spec: str, r: dict) -> str:
    """Against the strongest structural rule: does the decile-tau CI clear it?"""
    if spec == doc.get("strongest_structural"):
        return "the bar"
    if "clears_structural" not in r:
        return ""
    return "clears it" if r["clears_structural"] else "does not clear it"


def _cost(r: dict) -> str:
    return f"{r['supernet_seconds']:.0f} + {r['score_seconds']:.1f}"


def table_header(doc: dict) -> tuple[str, ...]:
    if "table_quality" in doc:
        return ("indicator", "archs", "tau [95% CI]", "band archs", "band tau [95% CI]", "band pick pct",
                "cost s (supernet + score)")
    q = [f"pick pct @{int(100 * x)}%" for x in doc["budget_quantiles"]]
    rule = doc.get("strongest_structural") or "structural rule"
    return ("indicator", "archs", "tau [95% CI]", "decile tau [CI]", *q, "cost s (supernet + score)", f"vs {rule}")


def write_outputs(doc: dict, work_dir: Path) -> dict:
    from bnnas.outputs.plots import plot_benchmark_study, plot_own_table_study

    plot = plot_own_table_study if "table_quality" in doc else plot_benchmark_study
    files = {"plot": plot(doc, work_dir / "benchmark_study.png").name}
    md = [f"# Indicators against {doc['benchmark']} ({doc['data_role']})", "",
          f"Ground truth: {doc['ground_truth']}; {doc['keys']} keys, {doc['distinct_networks']} distinct networks. "
          f"Supernets trained on: {doc['data'] or 'nothing'} ({doc['data_role']}).", ""]
    if doc["data_role"].startswith("proxy"):
        md += [f"**{doc['data_role']}**: the table was trained on another data set, so each tau mixes the "
               "indicator's quality with the domain shift between the two.", ""]
    md += _own_table_md(doc) if "table_quality" in doc else _published_table_md(doc)
    md += [f"![summary]({files['plot']})", ""]
    atomic_write_text(work_dir / "correlation.md", "\n".join(md))
    files["report"] = "correlation.md"
    return files


def _published_table_md(doc: dict) -> list[str]:
    md = [f"Decile tau: mean Kendall tau inside each of the ten FLOPs deciles. Pick pct: percentile, among the archs "
          f"within {100 * doc['band']:.0f} % below a budget at the "
          f"{', '.join(str(int(100 * q)) for q in doc['budget_quantiles'])} % FLOPs quantile, of the arch the "
          "indicator ranks highest there (100: the band's best; a random pick averages about 50). Brackets: bootstrap "
          f"95 % CI ({doc['bootstrap_resamples']} resamples of the archs). Per-subnet indicators score "
          f"{doc['sample']} keys stratified over FLOPs.", ""]
    for which, title in (("all_keys", "All keys as published"), ("distinct", "Distinct networks")):
        md += [f"## {title}", "", markdown_table(table_rows(doc, which), table_header(doc)), ""]
        first = next(iter(doc["indicators"].values()))[which]
        md += ["Budgets: " + "; ".join(f"{b['budget'] / 1e6:.1f} MFLOPs: {b['n']} archs in the band, best "
                                       f"{b['best_acc']:.2f} %, median {b['median_acc']:.2f} %"
                                       for b in first["budgets"] if b["n"]), ""]
    return md


def _own_table_md(doc: dict) -> list[str]:
    return [*quality_lines(doc), "", "## Indicators", "",
            f"Tau over all keys and inside the band (the archs of one budget); band pick pct: percentile, among the "
            "band's archs, of the one the indicator ranks highest (100: the best; a random pick averages about 50). "
            f"Brackets: bootstrap 95 % CI ({doc['bootstrap_resamples']} resamples of the archs).", "",
            markdown_table(table_rows(doc), table_header(doc)), ""]


def band_rows(doc: dict) -> list[tuple[str, ...]]:
    """One row per indicator: tau overall and among the band's archs, and the percentile of its pick there."""
    rows = []
    for spec, r in doc["indicators"].items():
        m, b = r["all_keys"], r.get("band")
        overall = f"{_num(m['kendall_tau'])} {_ci(m.get('ci', {}).get('kendall_tau_ci'))}"
        if not b:
            rows.append((spec, str(m["n"]), overall, "0", "n/a", "n/a", _cost(r)))
            continue
        pick = b["pick"]["pick_percentile"]
        rows.append((spec, str(m["n"]), overall, str(b["n"]), f"{_num(b['kendall_tau'])} {_ci(b.get('kendall_tau_ci'))}",
                     "n/a" if pick is None else f"{pick:.0f}", _cost(r)))
    return rows


def quality_lines(doc: dict) -> list[str]:
    """The ground truth's own trustworthiness: seed agreement, the band's headroom, agreement with the reference."""
    q = doc["table_quality"]
    out = ["## The ground truth itself", ""]
    for key, what in (("seed_agreement", "all keys"), ("band_seed_agreement", "band")):
        a = q.get(key)
        if a:
            out.append(f"- Seed tau ({what}, {a['repeats']} seeds): {_num(a['kendall_tau'], 2)} "
                       f"{_ci(a.get('kendall_tau_ci'))}; mean seed sd {a['mean_seed_std']:.2f} pp, spread of the "
                       f"means {a['spread_of_means']:.2f} pp.")
    h = q.get("band_headroom")
    if h:
        verdict = "the band's archs differ beyond seed noise" if h["differ"] else (
            "the band's archs do not differ detectably beyond seed noise: no indicator can pick among them here")
        out.append(f"- Band headroom: ANOVA p {h['anova_p']:.3g}, ICC(1) {h['icc']:.2f} "
                   f"[{h['icc_ci'][0]:.2f}, {h['icc_ci'][1]:.2f}], arch sd {h['arch_sd']:.2f} pp vs seed sd "
                   f"{h['seed_sd']:.2f} pp: {verdict}.")
    r = q.get("reference_agreement")
    if r:
        line = (f"- Against {r['reference']} ({r['dataset']}) on the same {r['keys']} keys: tau "
                f"{_num(r['kendall_tau'], 2)} {_ci(r.get('kendall_tau_ci'))}")
        if "band" in r:
            line += f"; inside the band {_num(r['band']['kendall_tau'], 2)} {_ci(r['band'].get('kendall_tau_ci'))}"
        out.append(line + ".")
    return out
