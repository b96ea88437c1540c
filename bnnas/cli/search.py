"""The BN-NAS pipeline behind ``tools/search.py``: train (or reuse) a BN-only supernet, score, search, report."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bnnas.core.arch import Arch, save_arch
import bnnas.cli.common as cli
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.data import build_classification_data, is_builtin
from bnnas.training.distributed import init_distributed
from bnnas.trust.early_bird import EarlyBirdStopper, consecutive_similarity, settle_epoch, similarity_matrix
from bnnas.errors import BNNASError
from bnnas.trust.evidence import LearningCheck, bn_free_mask, check_learning
from bnnas.core.flops import flops_table, params_table
from bnnas.indicators.bn import ScoreTable, bn_score_table
from bnnas.indicators.registry import as_scorer, build_indicator
from bnnas.outputs.results import announce, publish_latest, result_tag, tagged
from bnnas.search import SearchResult, check_budget, evolutionary_search, exact_search, num_choices, random_search
from bnnas.core.space import get_space, list_spaces
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, TrainResult, load_supernet, scores_from_record
from bnnas.outputs.workdir import claim_work_dir

log = logging.getLogger("bnnas")


@dataclass(frozen=True)
class Recipe:
    """Supernet defaults that go together; explicit --space / --gamma-init override them."""

    space_builtin: str  # space on the built-in 32 px data
    space_folder: str  # space on an ImageNet-style folder
    gamma_init: float
    lr: float | None = None  # None: the paper's rule, 0.8 x global batch / 1024 (at least 0.05)
    batch_size: int | None = None  # None: 32 on built-in data, 256 on a folder
    limit_train: int | None = None  # training images the supernet sees (None: all)


RECIPES = {
    "paper": Recipe("spos-small", "spos-imagenet", 1.0),
    # measured in docs/bn_only_recipe.md: the paper's recipe stays at chance on the built-in data, this one learns
    "small-data": Recipe("spos-small-res", "spos-small-res", 0.0, lr=0.5, batch_size=64, limit_train=12000),
}


def resolve_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the supernet settings the user left unset from the recipe (the data's default one unless --recipe)."""
    given = {k: getattr(args, k, None) for k in ("recipe", "space", "gamma_init", "lr", "batch_size", "limit_train")}
    builtin = is_builtin(args.data)
    name = given["recipe"] or ("small-data" if builtin else "paper")
    r = RECIPES[name]
    out = argparse.Namespace(**vars(args))
    out.recipe = name
    out.space = given["space"] or (r.space_builtin if builtin else r.space_folder)
    out.gamma_init = r.gamma_init if given["gamma_init"] is None else given["gamma_init"]
    out.lr = r.lr if given["lr"] is None else given["lr"]
    out.batch_size = given["batch_size"] or r.batch_size or (32 if builtin else 256)
    out.limit_train = r.limit_train if given["limit_train"] is None else given["limit_train"]
    return out


def setup_logging(work_dir: Path, main: bool = True) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger("bnnas")
    root.setLevel(logging.INFO if main else logging.WARNING)
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    for h in (logging.StreamHandler(sys.stdout), *( [logging.FileHandler(work_dir / "log.txt")] if main else [])):
        h.setFormatter(fmt)
        root.addHandler(h)
    root.propagate = False


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(
        description="BN-NAS: train a BN-only supernet, then find the best subnet under a FLOPs/latency budget.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data and space")
    g.add_argument("--data", default=None,
                   help="fashion-mnist or digits (built in), or an ImageNet-style folder (train/<class>/*.JPEG); "
                        "default: Fashion-MNIST when installed, else digits")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="small-data: spos-small-res space, residual branches start closed (gamma 0), the default on "
                        "built-in data; paper: the paper's space and gamma 1, the default on folders")
    g.add_argument("--space", default=None, help=f"search space, overrides the recipe's: {', '.join(list_spaces())}")
    g.add_argument("--holdout", type=cli.nonneg_int, default=0,
                   help="training images held out for the spos-acc indicator")
    g.add_argument("--limit-train", type=cli.positive_int, default=None,
                   help="train the supernet on this many training images (the same for every seed); overrides the "
                        "recipe's (small-data: 12000 of Fashion-MNIST's 60000, so 10 epochs fit in minutes on a CPU)")
    g = p.add_argument_group("supernet")
    g.add_argument("--supernet", default=None, help="reuse a trained supernet checkpoint instead of training")
    g.add_argument("--epochs", type=cli.positive_int, default=10,
                   help="supernet epochs (paper: 10 for SPOS, 15 for FairNAS)")
    g.add_argument("--batch-size", type=cli.positive_int, default=None,
                   help="per-process batch (default: the recipe's; paper: 32 built-in data, 256 folder)")
    g.add_argument("--lr", type=cli.positive_float, default=None,
                   help="peak LR (default: the recipe's; paper: 0.8 * global batch / 1024, >= 0.05)")
    g.add_argument("--warmup-epochs", type=cli.nonneg_float, default=None)
    g.add_argument("--sampler", choices=["spos", "fairnas"], default="spos", help="path sampling policy")
    g.add_argument("--train-mode", choices=["bn", "all"], default="bn", help="bn: only BN trains (the paper)")
    g.add_argument("--bn-params", choices=["last", "all"], default="last",
                   help="in bn mode, train only each op's last BN (official code) or every BN")
    g.add_argument("--gamma-init", type=cli.nonneg_float, default=None,
                   help="initial gamma of each residual candidate's indicator BN, overrides the recipe's (paper: 1)")
    g.add_argument("--early-bird", action="store_true", help="stop training once the op ranking settles")
    g.add_argument("--eb-threshold", type=cli.fraction, default=0.95)
    g.add_argument("--eb-patience", type=cli.positive_int, default=3)
    g.add_argument("--workers", type=cli.nonneg_int, default=None,
                   help="data loader workers (default 0 digits, 8 folder)")
    g.add_argument("--ckpt-every", type=cli.nonneg_int, default=0, help="also checkpoint every N steps")
    g.add_argument("--no-resume", action="store_true", help="refuse to resume (error if the work dir has a run)")
    g = p.add_argument_group("search")
    g.add_argument("--flops", type=cli.positive_float, default=None, help="budget in MFLOPs (default: the space's)")
    g.add_argument("--latency", type=cli.positive_float, default=None,
                   help="budget in ms, per-op latency measured on --device")
    g.add_argument("--indicator", default="bn", help="bn (BN-NAS) or spos-acc (SPOS accuracy, needs held-out data)")
    g.add_argument("--search", default="exact,evolution,random",
                   help="comma list of exact, evolution, random; the arch comes from the first one listed")
    g.add_argument("--population", type=cli.positive_int, default=50)
    g.add_argument("--iterations", type=cli.positive_int, default=20)
    g.add_argument("--samples", type=cli.positive_int, default=1000, help="random search samples")
    g = p.add_argument_group("run")
    g.add_argument("--work-dir", default="runs/search")
    g.add_argument("--seed", type=cli.nonneg_int, default=0)
    g.add_argument("--device", type=cli.device, default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    g.add_argument("--no-amp", action="store_true")
    g.add_argument("--threads", type=cli.positive_int, default=None,
                   help="CPU threads for torch (default: 1 for the built-in 32 px data on CPU, where the tiny convs "
                        "run faster single-threaded; else torch's default)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    cli.add_debug(g)
    return p


def _train_or_load(args, space, data, device, dist, work_dir: Path) -> tuple[Supernet, dict]:
    if args.supernet:
        model, ckpt = load_supernet(args.supernet)
        if model.space.name != space.name:
            raise BNNASError(f"--supernet {args.supernet} is a {model.space.name!r} supernet, not {space.name!r}")
        return model.to(device), {"source": str(args.supernet), "history": ckpt.get("history", []),
                                  "config": ckpt.get("config", {}), "seconds": 0.0, "stopped_early_at": None}
    cfg = SupernetTrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, sampler=args.sampler, train_mode=args.train_mode, bn_params=args.bn_params,
        gamma_init=args.gamma_init,
        seed=args.seed, workers=args.workers if args.workers is not None else (0 if is_builtin(data.name) else 8),
        amp=not args.no_amp, ckpt_every=args.ckpt_every, world_size=dist.world_size)
    torch.manual_seed(args.seed)
    model = Supernet(space)
    trainer = SupernetTrainer(model, data, cfg, work_dir, device, dist, show_progress=not args.quiet)
    if args.no_resume and trainer.ckpt_path.exists():
        raise BNNASError(f"{trainer.ckpt_path} exists and --no-resume was given; choose another --work-dir")
    stopper = EarlyBirdStopper(args.eb_threshold, args.eb_patience) if args.early_bird else None
    cb = (lambda t: stopper.update([scores_from_record(h) for h in t.history])) if stopper else None
    t0 = time.perf_counter()
    if stopper is not None and _stopped_early_before(trainer):
        # an earlier --early-bird run already stopped here: resuming would train one more epoch and move the arch
        result = TrainResult(history=trainer.history, stopped_early_at=trainer.epoch, checkpoint=trainer.ckpt_path)
    else:
        result = trainer.fit(resume=True, on_epoch_end=cb)
    return model, {"source": str(trainer.ckpt_path), "history": [h.to_dict() for h in result.history],
                   "config": asdict(cfg), "seconds": time.perf_counter() - t0,
                   "stopped_early_at": result.stopped_early_at}


def _stopped_early_before(trainer: SupernetTrainer) -> bool:
    """True (and the trainer loaded) if the work dir holds a run that --early-bird finished before its last epoch."""
    from bnnas.outputs.checkpoint import load_checkpoint

    if not trainer.ckpt_path.exists():
        return False
    ckpt = load_checkpoint(trainer.ckpt_path, kind="supernet")
    if not (ckpt.get("finished") and ckpt["epoch"] < trainer.cfg.epochs):
        return False
    trainer.load(trainer.ckpt_path)  # validates the settings, like a resume
    return True


def run(args: argparse.Namespace) -> dict:
    with contextlib.ExitStack() as stack:  # releases the work-dir lock however the run ends
        return _run(args, stack)


def _run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    work_dir = Path(args.work_dir)
    dist, device = init_distributed(args.device)
    args = resolve_recipe(args)
    space_name = args.space
    probe = get_space(space_name)
    methods = [m.strip() for m in args.search.split(",") if m.strip()]
    unknown = set(methods) - {"exact", "evolution", "random"}
    if unknown or not methods:
        raise BNNASError(f"unknown search method(s) {', '.join(sorted(unknown)) or '(none)'}: use exact, evolution, random")
    data = build_classification_data(args.data, probe.input_size, args.holdout, args.seed,
                                     limit_train=args.limit_train)
    space = get_space(space_name, data.num_classes)
    if args.supernet is None and args.batch_size is not None and \
            args.batch_size * dist.world_size > len(data.train):  # the trainer would say so after the work dir exists
        raise BNNASError(f"--batch-size {args.batch_size} is larger than the {len(data.train) // dist.world_size} "
                         "training images per process; lower --batch-size")

    # Budget first: an impossible budget should fail before hours of supernet training, not after.
    if args.latency is None:  # (and before the work dir is created)
        cost, budget, unit, scale = flops_table(space), \
            (space.default_budget if args.flops is None else args.flops) * 1e6, "MFLOPs", 1e6
        check_budget(cost, budget, unit, scale)
    lock = claim_work_dir(work_dir, dist.is_main, dist.enabled)  # lock, log.txt, crash leftovers
    if lock is not None:
        stack.callback(lock.release)
    if args.data is None and data.name != "fashion-mnist":
        log.info("note: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using the small "
                 "built-in digits instead")
    threads = args.threads if args.threads is not None else (1 if is_builtin(args.data) and device.type == "cpu" else None)
    if threads is not None:
        torch.set_num_threads(threads)
    if args.latency is not None:  # measured on this device, cached in the work dir
        from bnnas.core.latency import measure_latency_table

        cost, budget, unit, scale = measure_latency_table(space, device, cache=work_dir / "latency_table.json"), \
            args.latency / 1e3, "ms", 1e-3
        check_budget(cost, budget, unit, scale)

    t_all = time.perf_counter()
    log.info("data %s (%d training images, %d classes), space %s, recipe %s (gamma init %g)", data.name,
             len(data.train), data.num_classes, space.name, args.recipe, args.gamma_init)
    supernet, train_info = _train_or_load(args, space, data, device, dist, work_dir)
    if not dist.is_main:
        return {}
    supernet.eval()
    t0 = time.perf_counter()
    indicator = build_indicator(args.indicator, supernet, data=data, device=device)
    t_indicator = time.perf_counter() - t0
    scorer = as_scorer(indicator)
    nc = num_choices(space)
    results: dict[str, SearchResult] = {}
    for m in methods:
        if m == "exact":
            if not isinstance(indicator, ScoreTable):
                log.warning("exact search needs an additive indicator; %s is not, skipping", args.indicator)
                continue
            results[m] = exact_search(indicator, cost, budget)
        elif m == "evolution":
            # the paper's split of a generation (50 = 25 mutations + 25 crossovers, top-10) kept for any population
            half = args.population // 2
            results[m] = evolutionary_search(scorer, cost, budget, nc, population=args.population,
                                             topk=min(10, args.population), iterations=args.iterations,
                                             mutations=half, crossovers=args.population - half, seed=args.seed)
        else:
            results[m] = random_search(scorer, cost, budget, nc, samples=args.samples, seed=args.seed)
        r = results[m]
        log.info("%-9s score %.4f  cost %.3f %s  %d subnets  %.4fs", m, r.score, r.cost / scale, unit, r.evaluated,
                 r.seconds)
    if not results:
        raise BNNASError("no search method could run")
    best = results[next(m for m in methods if m in results)]
    if args.latency is not None:
        from bnnas.core.latency import latency_noise_warning

        noise = latency_noise_warning(cost, budget, best.choices)
        if noise:
            log.warning(noise)
    flops, params = flops_table(space), params_table(space)
    bn_table = bn_score_table(supernet)
    arch = Arch(space, tuple(best.choices), meta={
        "flops_m": round(flops.of(best.choices) / 1e6, 3), "params_m": round(params.of(best.choices) / 1e6, 4),
        "bn_score": round(bn_table.of(best.choices), 6),
        "found_by": {"method": best.method, "indicator": args.indicator, "score": best.score,
                     "budget": budget / scale, "budget_unit": unit, "supernet": train_info["source"],
                     "train_mode": train_info["config"].get("train_mode"),
                     "bn_params": train_info["config"].get("bn_params"),
                     "sampler": train_info["config"].get("sampler"),
                     "epochs_trained": len(train_info["history"]), "data": data.name, "seed": args.seed,
                     "recipe": args.recipe, "gamma_init": train_info["config"].get("gamma_init"),
                     "limit_train": args.limit_train},
    })
    tag = result_tag(budget / scale, unit, best.method, args.indicator)
    announce(work_dir, tag)
    save_arch(arch, work_dir / tagged("arch.json", tag))
    evidence = check_learning(train_info["history"], space.num_classes, bn_table.scores, bn_free_mask(space))
    summary = _write_outputs(work_dir, space, arch, bn_table, train_info, results, budget, unit, scale,
                             args, t_indicator, time.perf_counter() - t_all, tag, evidence)
    return summary


def _write_outputs(work_dir, space, arch, bn_table, train_info, results, budget, unit, scale, args, t_indicator,
                   t_all, tag: str, evidence: LearningCheck) -> dict:
    import bnnas.outputs.plots as plots

    history = train_info["history"]
    tables = [scores_from_record(h) for h in history]
    files = {"arch": tagged("arch.json", tag), "op_scores_plot": plots.plot_op_scores(
        bn_table.scores, [l.choices for l in space.layers], work_dir / tagged("op_scores.png", tag), arch.choices).name}
    settled = None
    if len(tables) >= 2:
        sim = similarity_matrix(tables)
        cons = consecutive_similarity(tables)
        settled = settle_epoch(cons, args.eb_threshold, args.eb_patience)
        files["early_bird_plot"] = plots.plot_similarity(sim, work_dir / "early_bird.png", settled).name
        np.savetxt(work_dir / "rank_similarity.csv", sim, delimiter=",", fmt="%.5f")
    if history:
        files["training_plot"] = plots.plot_training([h["epoch"] for h in history], [h["train_loss"] for h in history],
                                                     [h["train_acc"] for h in history], work_dir / "training.png").name
    hist = results["evolution"].history if "evolution" in results else next(iter(results.values())).history
    files["search_plot"] = plots.plot_search(hist, budget, {k: (r.cost, r.score) for k, r in results.items()},
                                             work_dir / tagged("search.png", tag), scale, unit).name
    summary = {
        "space": space.name, "arch": arch.ops, "flops_m": arch.meta["flops_m"], "params_m": arch.meta["params_m"],
        "bn_score": arch.meta["bn_score"], "budget": budget / scale, "budget_unit": unit,
        "supernet_seconds": round(train_info["seconds"], 2), "epochs_trained": len(history),
        "stopped_early_at": train_info["stopped_early_at"], "ranking_settled_at": settled,
        "indicator": args.indicator, "indicator_seconds": round(t_indicator, 4), "total_seconds": round(t_all, 2),
        "search": {k: {**r.summary(), "cost": r.cost / scale, "ops": [space.layers[i].choices[c]
                                                                      for i, c in enumerate(r.choices)]}
                   for k, r in results.items()},
        "files": files, "result": tag,
        "evidence": evidence.to_dict(), "data": arch.meta["found_by"]["data"], "seed": args.seed,
    }
    atomic_write_text(work_dir / tagged("report.md", tag), _report_md(summary, arch, bn_table, space))
    atomic_write_text(work_dir / tagged("summary.json", tag), json.dumps(summary, indent=2) + "\n")
    publish_latest(work_dir, tag)
    print(_summary_table(summary))
    return summary


def _summary_table(s: dict) -> str:
    rows = [("method", "score", s["budget_unit"], "subnets", "seconds")]
    for k, r in s["search"].items():
        rows.append((k, f"{r['score']:.4f}", f"{r['cost']:.3f}", str(r["evaluated"]), f"{r['seconds']:.4f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = "-+-".join("-" * w for w in widths)
    out = [f"\nBN-NAS search on {s['space']} -- budget {s['budget']:g} {s['budget_unit']}", line]
    for i, r in enumerate(rows):
        out.append(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            out.append(line)
    out += [line, f"arch: {' '.join(s['arch'])}",
            f"FLOPs {s['flops_m']:.2f} M  params {s['params_m']:.3f} M  BN score {s['bn_score']:.4f}",
            f"supernet {s['epochs_trained']} epochs in {s['supernet_seconds']:.1f}s; total {s['total_seconds']:.1f}s"]
    out += _evidence_lines(s)
    return "\n".join(out) + "\n"


def _evidence_lines(s: dict) -> list[str]:
    """What the run says about its own trustworthiness, and the two commands that test the rest."""
    e = s["evidence"]
    lines = []
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


def main(argv: list[str] | None = None) -> int:
    return cli.main(build_parser(), run, argv)


