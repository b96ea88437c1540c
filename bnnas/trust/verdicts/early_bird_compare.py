"""What does stopping early cost?

``tools/search.py --early-bird`` stops BN-only supernet training once the per-layer op ranking has settled
(:class:`~bnnas.trust.verdicts.early_bird.EarlyBirdStopper`). To judge that stop honestly we train the *full* schedule
once, with the same settings, keep every epoch's op-score table (``op_scores.json`` / the checkpoint's history),
replay the stopper on the growing history to find the epoch it would have stopped at, and solve the exact search on
the table of that epoch and on the final one. Training is deterministic for a given seed and the LR schedule is
defined over the full epoch count either way, so the table at the stop epoch is exactly what the early-stopped run
ends with.

Reported: stop epoch and settle epoch, both architectures, how many layers agree, and both architectures' scores
under the final table (how much of the full-schedule optimum the early arch keeps). Optionally both are trained
from scratch on the proxy schedule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnas.core.arch import Arch
from bnnas.trust.verdicts.early_bird import EarlyBirdStopper, consecutive_similarity, similarity_matrix
from bnnas.errors import BNNASError
from bnnas.core.flops import CostTable, flops_table
from bnnas.indicators.bn import ScoreTable
from bnnas.search import exact_search
from bnnas.core.space import SearchSpace
from bnnas.training.supernet_trainer import scores_from_record
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.training.proxy import ProxyConfig, train_from_scratch

if TYPE_CHECKING:  # annotations only
    import torch

    from bnnas.data import ClassificationData


def replay_stopper(tables: list[np.ndarray], threshold: float = 0.95, patience: int = 3,
                   min_epochs: int = 2) -> tuple[int | None, int | None]:
    """(epoch at which EarlyBirdStopper would stop training, epoch it reports the ranking settled at)."""
    stopper = EarlyBirdStopper(threshold, patience, min_epochs)
    for n in range(1, len(tables) + 1):
        if stopper.update(tables[:n]):
            return n, stopper.settled_at
    return None, None


def load_history(path: str | Path) -> tuple[str | None, list[np.ndarray]]:
    """Per-epoch score tables from an ``op_scores.json`` or a supernet checkpoint (its ``history``)."""
    path = Path(path)
    if not path.is_file():
        raise BNNASError(f"score history not found: {path}")
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        return doc.get("space"), [scores_from_record(e) for e in doc["epochs"]]
    from bnnas.outputs.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, kind="supernet")
    return ckpt["space"], [scores_from_record(h) for h in ckpt["history"]]


def compare_stop_vs_full(space: SearchSpace, tables: list[np.ndarray], budget: float, threshold: float = 0.95,
                         patience: int = 3, cost: CostTable | None = None) -> dict:
    """Exact-search archs at the early-bird stop epoch and at the last epoch of ``tables`` (budget in MACs)."""
    if len(tables) < 2:
        raise BNNASError(f"need the score tables of at least 2 epochs, got {len(tables)}")
    cost = cost or flops_table(space)
    stop, settled = replay_stopper(tables, threshold, patience)
    final = ScoreTable(tables[-1])
    per_epoch = [exact_search(ScoreTable(t), cost, budget) for t in tables]
    final_arch = per_epoch[-1].choices
    searchable = np.array([len(l.choices) > 1 for l in space.layers])

    def describe(epoch: int) -> dict:
        r = per_epoch[epoch - 1]
        same = (r.choices == final_arch)[searchable]
        return {"epoch": epoch, "ops": Arch(space, tuple(r.choices)).ops, "choices": r.choices.tolist(),
                "flops_m": r.cost / 1e6, "score_own_table": r.score, "score_final_table": final.of(r.choices),
                "layers_same_as_final": int(same.sum()), "overlap_with_final": float(same.mean())}

    out = {
        "epochs_trained": len(tables), "threshold": threshold, "patience": patience, "budget_m": budget / 1e6,
        "stop_epoch": stop, "settled_at": settled,
        "consecutive_similarity": [round(float(c), 5) for c in consecutive_similarity(tables)],
        "final": describe(len(tables)),
        "stop": describe(stop) if stop is not None else None,
        "overlap_by_epoch": [describe(e)["overlap_with_final"] for e in range(1, len(tables) + 1)],
    }
    if stop is not None:
        best = out["final"]["score_final_table"]
        out["stop_score_ratio"] = out["stop"]["score_final_table"] / best if best else None
        out["epochs_saved"] = len(tables) - stop
    return out


def write_outputs(doc: dict, tables: list[np.ndarray], work_dir: Path) -> dict:
    """The similarity matrix and the overlap-by-epoch plot; returns their file names."""
    import bnnas.outputs.plots as plots

    files = {"similarity": plots.plot_similarity(similarity_matrix(tables), work_dir / "early_bird_similarity.png",
                                                 doc["settled_at"]).name}
    files["overlap"] = plots.plot_overlap_by_epoch(doc["overlap_by_epoch"], doc["stop_epoch"],
                                                   work_dir / "early_bird_overlap.png").name
    return files


def save_comparison(doc: dict, tables: list[np.ndarray], work_dir: Path) -> str:
    """Write the plots, ``early_bird_compare.json`` and ``early_bird_compare.md``; returns the markdown."""
    doc["files"] = write_outputs(doc, tables, work_dir)
    atomic_write_text(work_dir / "early_bird_compare.json", json.dumps(doc, indent=2) + "\n")
    md = report_md(doc)
    atomic_write_text(work_dir / "early_bird_compare.md", md)
    return md


def retrain_stop_and_final(doc: dict, space: SearchSpace, data: ClassificationData, proxy: ProxyConfig,
                           device: torch.device) -> dict:
    """Both archs of :func:`compare_stop_vs_full` trained from scratch on the proxy schedule (once when they are the
    same arch), as ``doc["retrained"]`` holds them."""
    res = {}
    for which in ("stop", "final"):
        ch = tuple(doc[which]["choices"])
        res[which] = res["stop"] if which == "final" and ch == tuple(doc["stop"]["choices"]) else \
            train_from_scratch(Arch(space, ch), data, proxy, device)
    return {"proxy": proxy.to_dict(), **res}


def report_md(doc: dict) -> str:
    lines = [f"# Early-bird stop vs full schedule ({doc.get('space', '?')})", "",
             f"Full schedule: {doc['epochs_trained']} epochs. Stopper: similarity >= {doc['threshold']} for "
             f"{doc['patience']} consecutive epoch pairs. Budget {doc['budget_m']:g} MFLOPs, exact search.", ""]
    if doc["stop_epoch"] is None:
        lines.append("The ranking never settled within the schedule: --early-bird would not have stopped.")
    else:
        s, f = doc["stop"], doc["final"]
        lines += [f"Early-bird stops at epoch **{doc['stop_epoch']}** (ranking settled at epoch {doc['settled_at']}), "
                  f"saving {doc['epochs_saved']} of {doc['epochs_trained']} epochs.", "",
                  "| | epoch | ops | MFLOPs | score (own table) | score (final table) |", "|---|---|---|---|---|---|",
                  f"| early-bird arch | {s['epoch']} | {' '.join(s['ops'])} | {s['flops_m']:.2f} | "
                  f"{s['score_own_table']:.4f} | {s['score_final_table']:.4f} |",
                  f"| full-schedule arch | {f['epoch']} | {' '.join(f['ops'])} | {f['flops_m']:.2f} | "
                  f"{f['score_own_table']:.4f} | {f['score_final_table']:.4f} |", "",
                  f"Layers in agreement: {s['layers_same_as_final']} "
                  f"({100 * s['overlap_with_final']:.0f}% of searchable layers); the early arch keeps "
                  f"{100 * doc['stop_score_ratio']:.2f}% of the full-schedule optimum's final-table score."]
        if "retrained" in doc:
            r = doc["retrained"]
            lines += ["", f"Trained from scratch ({r['proxy']['epochs']} proxy epochs): early-bird arch "
                      f"{100 * r['stop']['acc']:.2f}%, full-schedule arch {100 * r['final']['acc']:.2f}% val top-1."]
    return "\n".join(lines) + "\n"
