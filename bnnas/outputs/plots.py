"""PNG plots a person would rather look at than read: op scores, ranking stability, the search landscape."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_similarity(sim: np.ndarray, path: Path, settled: int | None = None, title: str = "") -> Path:
    """Fig. 4 of the paper: epochs x epochs similarity of the op-rank vectors."""
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    n = len(sim)
    im = ax.imshow(sim, vmin=max(0.0, float(np.nanmin(sim)) if n else 0.0), vmax=1.0, cmap="viridis", origin="lower",
                   extent=(0.5, n + 0.5, 0.5, n + 0.5))
    fig.colorbar(im, ax=ax, label="rank similarity")
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch")
    if settled is not None:
        ax.axvline(settled, color="w", ls="--", lw=1)
        ax.axhline(settled, color="w", ls="--", lw=1)
    ax.set_title(title or (f"op ranking settles at epoch {settled}" if settled else "op ranking similarity"))
    return _save(fig, path)


def plot_op_scores(scores: np.ndarray, choices: Sequence[Sequence[str]], path: Path, picked: Sequence[int] | None = None,
                   title: str = "BN indicator per op") -> Path:
    ops = sorted({op for layer in choices for op in layer}, key=lambda o: (len(o) != 4, o))
    grid = np.full((len(choices), len(ops)), np.nan)
    for l, layer in enumerate(choices):
        for c, op in enumerate(layer):
            grid[l, ops.index(op)] = scores[l, c]
    fixed = [l for l, layer in enumerate(choices) if len(layer) == 1]
    shown = grid.copy()
    shown[fixed] = np.nan  # single-choice layers are not searched: keep their scale from hiding the searched ones
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(ops), 1.2 + 0.28 * len(choices)))
    im = ax.imshow(shown, aspect="auto", cmap="magma")
    fig.colorbar(im, ax=ax, label="mean |gamma| of last BN (searched layers)")
    for l in fixed:
        c = ops.index(choices[l][0])
        ax.add_patch(plt.Rectangle((c - 0.5, l - 0.5), 1, 1, color="0.85"))
        ax.text(c, l, f"fixed {grid[l, c]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_xticks(range(len(ops)), ops)
    ax.set_yticks(range(len(choices)), [f"L{l}" for l in range(len(choices))])
    if picked is not None:
        for l, c in enumerate(picked):
            ax.add_patch(plt.Rectangle((ops.index(choices[l][c]) - 0.5, l - 0.5), 1, 1, fill=False, ec="cyan", lw=1.5))
    ax.set_title(title)
    return _save(fig, path)


def plot_search(history: np.ndarray, budget: float, results: dict[str, tuple[float, float]], path: Path,
                unit_scale: float = 1e6, unit: str = "MFLOPs") -> Path:
    """Scored subnets (cost vs indicator), the budget, and where each search method ended."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if len(history):
        ax.scatter(history[:, 0] / unit_scale, history[:, 1], s=6, alpha=0.35, label="subnets scored by EA")
    ax.axvline(budget / unit_scale, color="k", ls="--", lw=1, label="budget")
    markers = {"exact": ("*", 220), "evolution": ("o", 80), "random": ("s", 60)}
    for name, (cost, score) in results.items():
        m, s = markers.get(name, ("D", 60))
        ax.scatter([cost / unit_scale], [score], marker=m, s=s, edgecolor="k", zorder=5, label=f"{name} best")
    ax.set_xlabel(unit)
    ax.set_ylabel("subnet score")
    ax.legend(fontsize=8)
    ax.set_title("search under budget")
    return _save(fig, path)


def plot_training(epochs: Sequence[int], loss: Sequence[float], acc: Sequence[float], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(epochs, loss, "o-", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, acc, "s--", color="tab:orange", label="train acc")
    ax2.set_ylabel("accuracy")
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title("supernet training")
    return _save(fig, path)


def plot_own_table_study(doc: dict, path: Path) -> Path:
    """Indicators against a table of our own: tau over all archs and inside the band with their CIs (left), and the
    ground truth itself, every seed's accuracy against FLOPs with the band marked (right): is there anything to rank?"""
    names = list(doc["indicators"])
    y = np.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 2.8))
    ax1.invert_yaxis()
    for k, (label, dy, pick) in enumerate((("tau, all archs", -0.15, lambda r: r["all_keys"]),
                                           ("tau inside the band", 0.15, lambda r: r.get("band")))):
        rows = [pick(doc["indicators"][n]) or {} for n in names]
        v = np.array([r.get("kendall_tau", np.nan) for r in rows], dtype=float)
        cis = [r.get("kendall_tau_ci", r.get("ci", {}).get("kendall_tau_ci")) for r in rows]
        err = np.array([[v[i] - c[0], c[1] - v[i]] if c else [0, 0] for i, c in enumerate(cis)]).T
        ax1.errorbar(v, y + dy, xerr=err, fmt="o", capsize=3, label=label, color=f"C{k}")
    ax1.axvline(0, color="grey", lw=0.8)
    ax1.set_yticks(y, names)
    ax1.set_xlim(-1.05, 1.05)
    ax1.set_xlabel("Kendall tau vs the ground truth's mean accuracy")
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    pts = doc["table_points"]
    flops, accs, band = np.array(pts["flops"]) / 1e6, pts["accs"], np.array(pts["band"], dtype=bool)
    for inside, color, label in ((False, "C0", "spread"), (True, "C3", "band")):
        for i in np.flatnonzero(band == inside):
            a = [v for v in accs[i] if v is not None and np.isfinite(v)]
            ax2.plot([flops[i]] * len(a), a, "o", ms=4, color=color, alpha=0.6,
                     label=label if i == np.flatnonzero(band == inside)[0] else None)
            ax2.plot(flops[i], np.mean(a), "_", ms=14, mew=2, color=color)
    ax2.set_xlabel("MFLOPs")
    ax2.set_ylabel("test top-1 (%): every seed, and their mean")
    ax2.legend(fontsize=8)
    h = doc["table_quality"].get("band_headroom")
    if h:
        ax2.set_title(f"band: ANOVA p {h['anova_p']:.2f}, ICC {h['icc']:.2f}", fontsize=9)
    fig.suptitle(f"{doc['benchmark']}: indicators vs our own ground truth ({doc['data_role']})", fontsize=10)
    return _save(fig, path)


def plot_benchmark_study(doc: dict, path: Path) -> Path:
    """Indicators against a benchmark table: tau overall and inside FLOPs deciles (left), the budgeted pick's
    percentile at each budget (right), both with their bootstrap CIs, over all keys."""
    names = list(doc["indicators"])
    res = [doc["indicators"][n]["all_keys"] for n in names]
    y = np.arange(len(names))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 2.6), sharey=True)
    ax1.invert_yaxis()  # the first indicator on top, as in the report's table
    for k, (key, label, dy) in enumerate((("kendall_tau", "tau, all archs", -0.15), ("decile_tau", "tau inside FLOPs deciles", 0.15))):
        v = np.array([r[key] for r in res], dtype=float)
        cis = [r.get("ci", {}).get(f"{key}_ci") for r in res]
        err = np.array([[v[i] - c[0], c[1] - v[i]] if c else [0, 0] for i, c in enumerate(cis)]).T
        ax1.errorbar(v, y + dy, xerr=err, fmt="o", capsize=3, label=label, color=f"C{k}")
    ax1.axvline(0, color="grey", lw=0.8)
    ax1.set_yticks(y, names)
    ax1.set_xlabel("Kendall tau vs published accuracy")
    ax1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    for j, q in enumerate(doc["budget_quantiles"]):
        v = np.array([np.nan if r["budgets"][j]["pick_percentile"] is None else r["budgets"][j]["pick_percentile"]
                      for r in res])
        cis = [(r.get("ci", {}).get("pick_percentile_ci") or [None] * 3)[j] for r in res]
        err = np.array([[v[i] - c[0], c[1] - v[i]] if c else [0, 0] for i, c in enumerate(cis)]).T
        ax2.errorbar(v, y + 0.2 * (j - 1), xerr=err, fmt="s", capsize=3, color=f"C{j + 2}",
                     label=f"budget at the {int(100 * q)}% FLOPs quantile")
    ax2.axvline(50, color="grey", lw=0.8, ls="--")
    ax2.set_xlim(0, 102)
    ax2.set_xlabel("percentile of the pick in the budget's band (100 = best)")
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, columnspacing=0.8)
    fig.suptitle(f"{doc['benchmark']}: indicators vs the published ground truth ({doc['data_role']})", fontsize=10)
    return _save(fig, path)


def plot_indicator_scatter(spec: str, res: dict, acc: np.ndarray, flops: np.ndarray, k: int, path: Path) -> Path:
    """One indicator of the ranking study: its score against each subnet's proxy-trained accuracy, coloured by FLOPs."""
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    sc = ax.scatter(res["scores"], 100 * acc, c=flops, cmap="viridis", s=36, edgecolor="k", lw=0.5)
    fig.colorbar(sc, ax=ax, label="MFLOPs")
    ax.set_xlabel(f"{spec} score")
    ax.set_ylabel("proxy-trained val top-1 (%)")
    ax.set_title(f"{spec}: tau {res['kendall_tau']:+.2f}, rho {res['spearman_rho']:+.2f} (K={k})",
                 fontsize=9)
    return _save(fig, path)


def plot_overlap_by_epoch(overlap: Sequence[float], stop_epoch: int | None, path: Path) -> Path:
    """Early-bird: share of layers where each epoch's searched arch equals the final one, and the stop epoch."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    e = np.arange(1, len(overlap) + 1)
    ax.plot(e, overlap, "o-", label="searched arch = final arch (share of layers)")
    if stop_epoch:
        ax.axvline(stop_epoch, color="r", ls="--", lw=1, label=f"early-bird stop (epoch {stop_epoch})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("supernet epoch")
    ax.set_ylabel("overlap with final arch")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_verify(st: Any, flops: dict[str, float], budget: float, path: Path) -> Path:
    """Does the search beat random? Every arch's per-seed and mean accuracy against its FLOPs, the random archs'
    median +- 1 std and the budget; ``st`` is verify's VerifyStats (read, not imported: outputs sit below
    the trust layer)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    lo, hi = st.pool_median - (st.pool_std or 0.0), st.pool_median + (st.pool_std or 0.0)
    ax.axhspan(100 * lo, 100 * hi, color="tab:blue", alpha=0.12, label="random median ± 1 std")
    ax.axhline(100 * st.pool_median, color="tab:blue", lw=0.8, ls="--")
    for i, r in enumerate(st.random):
        x = flops[r.name] / 1e6
        ax.scatter([x] * r.n, [100 * a for a in r.accs.values()], s=14, color="tab:blue", alpha=0.45,
                   label="random arch, per seed" if i == 0 else None)
        ax.scatter([x], [100 * r.mean], s=60, marker="D", facecolor="white", edgecolor="tab:blue", zorder=3,
                   label="random arch, mean" if i == 0 else None)
    s = st.searched
    x = flops["searched"] / 1e6
    ax.scatter([x] * s.n, [100 * a for a in s.accs.values()], s=18, color="tab:red", alpha=0.6,
               label="searched, per seed")
    ax.scatter([x], [100 * s.mean], s=200, marker="*", color="tab:red", edgecolor="k", zorder=4, label="searched, mean")
    ax.axvline(budget / 1e6, color="grey", ls=":", lw=1, label="budget")
    ax.set_xlabel("MFLOPs")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title(f"searched at percentile {st.percentile:.0f} of {len(st.random)} random archs")
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_retrain_curve(history: Sequence[Any], path: Path, ema: bool = False) -> Path:
    """Retraining per epoch: train/val loss with the LR, and val top-1/top-5 (EMA and raw) beside train accuracy;
    ``history``: the trainer's epoch records."""
    ep = [h.epoch for h in history]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax.plot(ep, [h.train_loss for h in history], "o-", ms=3, label="train loss (smoothed labels)")
    ax.plot(ep, [h.val_loss for h in history], "s-", ms=3, label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=8)
    ax2.plot(ep, [100 * h.top1 for h in history], "o-", ms=3, label="val top-1" + (" (EMA)" if ema else ""))
    ax2.plot(ep, [100 * h.top5 for h in history], "s--", ms=3, label="val top-5" + (" (EMA)" if ema else ""))
    if ema:
        ax2.plot(ep, [100 * (h.raw_top1 or 0) for h in history], "^:", ms=3, label="val top-1 (raw)")
    ax2.plot(ep, [100 * h.train_acc for h in history], "-", color="grey", alpha=0.6, label="train top-1 (augmented)")
    best = max(history, key=lambda h: h.top1)
    ax2.axhline(100 * best.top1, color="k", ls=":", lw=0.8)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title(f"best top-1 {100 * best.top1:.2f}% (epoch {best.epoch})")
    ax2.legend(fontsize=8)
    ax3 = ax.twinx()
    ax3.plot(ep, [h.lr for h in history], ":", color="tab:green", lw=1)
    ax3.set_ylabel("LR at epoch end (dotted)", color="tab:green")
    from matplotlib.ticker import MaxNLocator

    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)
