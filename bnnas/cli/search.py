"""``bnnas search`` / ``tools/search.py``: train (or reuse) a BN-only supernet, score its ops, search, report."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bnnas.core.arch import Arch, save_arch
import bnnas.cli.common as cli
import bnnas.cli.flags as flags
from bnnas.cli.defaults import RECIPES, pick, resolve_recipe
from bnnas.cli.search_records import Budget, SearchOutcome, SearchSettings
from bnnas.cli.search_report import write_outputs
from bnnas.data import ClassificationData, build_classification_data
from bnnas.training.distributed import DistInfo, init_distributed
from bnnas.trust.early_bird import EarlyBirdStopper
from bnnas.errors import BNNASError
from bnnas.trust.evidence import bn_free_mask, check_learning
from bnnas.core.flops import flops_table, params_table
from bnnas.indicators.bn import ScoreTable, bn_score_table
from bnnas.indicators.registry import as_scorer, build_indicator
from bnnas.outputs.results import announce, result_tag, tagged
from bnnas.search import EvolutionConfig, SearchResult, evolutionary_search, exact_search, num_choices, random_search
from bnnas.core.space import SearchSpace, get_space, list_spaces
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_trainer import SupernetTrainConfig, SupernetTrainer, load_supernet, scores_from_record
from bnnas.training.trainer import TrainResult
from bnnas.outputs.workdir import hold_work_dir

log = logging.getLogger("bnnas")


DESCRIPTION = "BN-NAS: train a BN-only supernet, then find the best subnet under a FLOPs/latency budget."


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The search flags (also the early-bird comparison's, which must train exactly what a search trains)."""
    g = p.add_argument_group("data and space")
    flags.add(g, "data")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="small-data: spos-small-res space, residual branches start closed (gamma 0), the default on "
                        "built-in data; paper: the paper's space and gamma 1, the default on folders")
    g.add_argument("--space", default=None, help=f"search space, overrides the recipe's: {', '.join(list_spaces())}, or a space file "
                        "(.yaml/.json, docs/spaces.md)")
    g.add_argument("--holdout", type=cli.nonneg_int, default=0,
                   help="training images held out for the spos-acc indicator")
    flags.add(g, "limit-train",
              help="train the supernet on this many training images (the same for every seed); overrides the "
                   "recipe's (small-data: 12000 of Fashion-MNIST's 60000, so 10 epochs fit in minutes on a CPU)")
    g = p.add_argument_group("supernet")
    g.add_argument("--supernet", default=None, help="reuse a trained supernet checkpoint instead of training")
    flags.add(g, "epochs", default=10, help="supernet epochs (paper: 10 for SPOS, 15 for FairNAS)")
    flags.add(g, "batch-size", help="per-process batch (default: the recipe's; paper: 32 built-in data, 256 folder)")
    flags.add(g, "lr", help="peak LR (default: the recipe's; paper: 0.8 * global batch / 1024, >= 0.05)")
    g.add_argument("--warmup-epochs", type=cli.nonneg_float, default=None, help="default: min(5, 10%% of epochs)")
    g.add_argument("--sampler", choices=["spos", "fairnas"], default="spos", help="path sampling policy")
    g.add_argument("--train-mode", choices=["bn", "all"], default="bn", help="bn: only BN trains (the paper)")
    g.add_argument("--bn-params", choices=["last", "all"], default="last",
                   help="in bn mode, train only each op's last BN (official code) or every BN")
    g.add_argument("--gamma-init", type=cli.nonneg_float, default=None,
                   help="initial gamma of each residual candidate's indicator BN, overrides the recipe's (paper: 1)")
    g.add_argument("--early-bird", action="store_true", help="stop training once the op ranking settles")
    g.add_argument("--eb-threshold", type=cli.fraction, default=0.95,
                   help="op-ranking similarity of consecutive epochs that counts as settled")
    g.add_argument("--eb-patience", type=cli.positive_int, default=3,
                   help="consecutive comparisons that must reach --eb-threshold")
    flags.add(g, "workers")
    g.add_argument("--ckpt-every", type=cli.nonneg_int, default=0, help="also checkpoint every N steps")
    g.add_argument("--no-resume", action="store_true", help="refuse to resume (error if the work dir has a run)")
    g = p.add_argument_group("search")
    g.add_argument("--flops", type=cli.positive_float, default=None,
                   help="budget in MFLOPs (default: the space's)")
    g.add_argument("--latency", type=cli.positive_float, default=None,
                   help="budget in ms, per-op latency measured on --device")
    g.add_argument("--latency-runtime", choices=["torch", "onnxruntime"], default="torch",
                   help="with --latency: time the ops in eager PyTorch or in onnxruntime (CPU)")
    g.add_argument("--indicator", default="bn", help="bn (BN-NAS) or spos-acc (SPOS accuracy, needs held-out data)")
    g.add_argument("--search", default="exact,evolution,random",
                   help="comma list of exact, evolution, random; the arch comes from the first one listed")
    g.add_argument("--population", type=cli.positive_int, default=EvolutionConfig.population,
                   help="evolution: subnets per generation")
    g.add_argument("--iterations", type=cli.positive_int, default=EvolutionConfig.iterations,
                   help="evolution: generations")
    g.add_argument("--samples", type=cli.positive_int, default=1000, help="random search samples")
    g = p.add_argument_group("run")
    flags.add_run(g, "runs/search", "seed", "device")
    g.add_argument("--no-amp", action="store_true", help="no bf16 autocast on GPU")
    for name in ("threads", "quiet", "debug"):
        flags.add(g, name)


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


def supernet_config(args: argparse.Namespace, world_size: int) -> SupernetTrainConfig:
    """The supernet's training settings from resolved search flags (see ``resolve_recipe``)."""
    cfg = SupernetTrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        warmup_epochs=args.warmup_epochs, sampler=args.sampler, train_mode=args.train_mode, bn_params=args.bn_params,
        gamma_init=args.gamma_init,
        seed=args.seed, workers=pick(args.workers, "supernet", "workers", args.data),
        amp=not args.no_amp, ckpt_every=args.ckpt_every, world_size=world_size)
    return cfg


@dataclass(frozen=True)
class SupernetSource:
    """Where a search's supernet comes from: ``checkpoint`` when given, else a training run in ``work_dir``."""

    work_dir: Path
    checkpoint: str | None = None  # reuse this trained supernet instead of training
    no_resume: bool = False  # refuse to resume a run that work_dir already holds
    quiet: bool = False  # no progress bars


def train_or_load_supernet(space: SearchSpace, data: ClassificationData, device: torch.device, dist: DistInfo,
                           source: SupernetSource, cfg: SupernetTrainConfig,
                           stopper: EarlyBirdStopper | None = None) -> tuple[Supernet, dict]:
    """Load ``source.checkpoint``, or train (resuming ``source.work_dir``'s run unless ``source.no_resume``) with
    ``cfg``; ``stopper`` ends training once the op ranking settles. Returns the supernet and where it came from, its
    history and time."""
    work_dir, checkpoint, no_resume, quiet = source.work_dir, source.checkpoint, source.no_resume, source.quiet
    if checkpoint:
        model, ckpt = load_supernet(checkpoint)
        if model.space.name != space.name:
            raise BNNASError(f"--supernet {checkpoint} is a {model.space.name!r} supernet, not {space.name!r}")
        return model.to(device), {"source": str(checkpoint), "history": ckpt.get("history", []),
                                  "config": ckpt.get("config", {}), "seconds": 0.0, "stopped_early_at": None}
    torch.manual_seed(cfg.seed)
    model = Supernet(space)
    trainer = SupernetTrainer(model, data, cfg, work_dir, device, dist, show_progress=not quiet)
    if no_resume and trainer.ckpt_path.exists():
        raise BNNASError(f"{trainer.ckpt_path} exists and --no-resume was given; choose another --work-dir")
    cb = (lambda t: stopper.update([scores_from_record(h) for h in t.history])) if stopper else None
    t0 = time.perf_counter()
    if stopper is not None and _stopped_early_before(trainer):
        # an earlier --early-bird run already stopped here: resuming would train one more epoch and move the arch
        result = TrainResult(history=trainer.history, stopped_early_at=trainer.epoch, checkpoint=trainer.ckpt_path)
    else:
        result = trainer.fit(trainer.existing_checkpoint(), on_epoch_end=cb)
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


@dataclass(frozen=True)
class TrainedSupernet:
    """A supernet ready to score, with the space and data of the run and ``train_or_load_supernet``'s account of
    where it came from."""

    model: Supernet
    info: dict
    space: SearchSpace  # the run's space, which costs and reports use (a loaded checkpoint carries its own copy)
    data: ClassificationData


def search_settings(args: argparse.Namespace) -> SearchSettings:
    """The search's settings from resolved flags; an unknown ``--search`` method is an error."""
    methods = tuple(m.strip() for m in args.search.split(",") if m.strip())
    unknown = set(methods) - {"exact", "evolution", "random"}
    if unknown or not methods:
        raise BNNASError(f"unknown search method(s) {', '.join(sorted(unknown)) or '(none)'}: "
                         "use exact, evolution, random")
    return SearchSettings(methods, args.indicator, EvolutionConfig.for_population(args.population, args.iterations),
                          args.samples, args.seed, args.recipe, args.limit_train, args.eb_threshold, args.eb_patience)


def flops_budget(space: SearchSpace, mflops: float | None) -> Budget:
    """``mflops`` (default: the space's budget) as a checked FLOPs budget."""
    budget = Budget(flops_table(space), (space.default_budget if mflops is None else mflops) * 1e6, "MFLOPs", 1e6)
    budget.check()
    return budget


def latency_budget(space: SearchSpace, device: torch.device, cache: Path, ms: float,
                   runtime: str = "torch") -> Budget:
    """``ms`` as a checked latency budget over per-op latencies measured on ``device`` in ``runtime`` (cached in
    ``cache``)."""
    from bnnas.core.latency import measure_latency_table

    budget = Budget(measure_latency_table(space, device, cache=cache, runtime=runtime), ms / 1e3, "ms", 1e-3)
    budget.check()
    return budget


def latency_cache_name(runtime: str) -> str:
    """The work dir's latency table file of ``runtime`` (torch keeps the name it always had)."""
    return "latency_table.json" if runtime == "torch" else f"latency_table-{runtime}.json"


def _check_batch_size(batch_size: int | None, world_size: int, train_images: int) -> None:
    """A batch larger than each process's share of the training set is an error (before the work dir exists: the
    trainer would say so after)."""
    if batch_size is not None and batch_size * world_size > train_images:
        raise BNNASError(f"--batch-size {batch_size} is larger than the {train_images // world_size} "
                         "training images per process; lower --batch-size")


@cli.with_exit_stack
def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict:
    """Read the flags into typed settings, check data and budget, train or load the supernet, then search and
    report (the report's summary, or {} on processes other than the main one)."""
    work_dir = Path(args.work_dir)
    dist, device = init_distributed(args.device)
    args = resolve_recipe(args)
    probe = get_space(args.space)
    settings = search_settings(args)
    data = build_classification_data(args.data, probe.input_size, args.holdout, args.seed,
                                     limit_train=args.limit_train)
    space = get_space(args.space, data.num_classes)
    if args.supernet is None:  # a reused supernet is not trained: its batch does not matter
        _check_batch_size(args.batch_size, dist.world_size, len(data.train))
    # Budget first: an impossible budget should fail before hours of supernet training, not after.
    budget = flops_budget(space, args.flops) if args.latency is None else None  # (and before the work dir exists)
    if args.latency is not None:
        from bnnas.core.latency import check_runtime

        check_runtime(args.latency_runtime, device)
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # lock, log.txt, crash leftovers
    if args.data is None and data.name != "fashion-mnist":
        log.info("note: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using the small "
                 "built-in digits instead")
    cli.set_threads(args.threads, args.data, device)
    if budget is None:  # measured on this device, cached in the work dir
        budget = latency_budget(space, device, work_dir / latency_cache_name(args.latency_runtime), args.latency,
                                args.latency_runtime)

    t_all = time.perf_counter()
    log.info("data %s (%d training images, %d classes), space %s, recipe %s (gamma init %g)", data.name,
             len(data.train), data.num_classes, space.name, args.recipe, args.gamma_init)
    stopper = EarlyBirdStopper(args.eb_threshold, args.eb_patience) if args.early_bird else None
    source = SupernetSource(work_dir, args.supernet, args.no_resume, args.quiet)
    supernet, train_info = train_or_load_supernet(space, data, device, dist, source,
                                                  supernet_config(args, dist.world_size), stopper)
    if not dist.is_main:
        return {}
    trained = TrainedSupernet(supernet, train_info, space, data)
    return search_and_report(work_dir, trained, device, budget, settings, t_all)


def search_and_report(work_dir: Path, trained: TrainedSupernet, device: torch.device, budget: Budget,
                      settings: SearchSettings, t_all: float) -> dict:
    """Score the supernet's ops, run the searches, save the arch of the first that ran and write the report;
    ``t_all``: when the run's work began (``time.perf_counter()``)."""
    space, info = trained.space, trained.info
    trained.model.eval()
    t0 = time.perf_counter()
    indicator = build_indicator(settings.indicator, trained.model, data=trained.data, device=device)
    t_indicator = time.perf_counter() - t0
    results = _run_searches(indicator, budget, num_choices(space), settings)
    best = _best_result(results, settings.methods, budget)
    bn_table = bn_score_table(trained.model)
    arch = _found_arch(trained, best, bn_table, budget, settings)
    tag = result_tag(budget.shown, budget.unit, best.method, settings.indicator)
    announce(work_dir, tag)
    save_arch(arch, work_dir / tagged("arch.json", tag))
    evidence = check_learning(info["history"], space.num_classes, bn_table.scores, bn_free_mask(space))
    outcome = SearchOutcome(space, arch, bn_table, info, results, budget, evidence, tag, t_indicator,
                            time.perf_counter() - t_all)
    return write_outputs(work_dir, settings, outcome)


def _run_searches(indicator: object, budget: Budget, n_choices: np.ndarray,
                  settings: SearchSettings) -> dict[str, SearchResult]:
    """Every requested method's result, in the order asked, each logged; exact search skips (with a warning) an
    indicator that is not a per-op table."""
    scorer = as_scorer(indicator)
    results: dict[str, SearchResult] = {}
    for m in settings.methods:
        if m == "exact":
            if not isinstance(indicator, ScoreTable):
                log.warning("exact search needs an additive indicator; %s is not, skipping", settings.indicator)
                continue
            results[m] = exact_search(indicator, budget.cost, budget.limit)
        elif m == "evolution":
            results[m] = evolutionary_search(scorer, budget.cost, budget.limit, n_choices, settings.evolution,
                                             seed=settings.seed)
        else:
            results[m] = random_search(scorer, budget.cost, budget.limit, n_choices, samples=settings.samples,
                                       seed=settings.seed)
        r = results[m]
        log.info("%-9s score %.4f  cost %.3f %s  %d subnets  %.4fs", m, r.score, r.cost / budget.scale, budget.unit,
                 r.evaluated, r.seconds)
    if not results:
        raise BNNASError("no search method could run")
    return results


def _best_result(results: dict[str, SearchResult], methods: tuple[str, ...], budget: Budget) -> SearchResult:
    """The result of the first method listed that ran; warns when a latency table is too noisy to trust it."""
    best = results[next(m for m in methods if m in results)]
    if budget.by_latency:
        from bnnas.core.latency import latency_noise_warning

        noise = latency_noise_warning(budget.cost, budget.limit, best.choices)
        if noise:
            log.warning(noise)
    return best


def _found_arch(trained: TrainedSupernet, best: SearchResult, bn_table: ScoreTable, budget: Budget,
                settings: SearchSettings) -> Arch:
    """The searched arch with its costs, BN score and how it was found (arch.json's meta)."""
    space, info = trained.space, trained.info
    flops, params = flops_table(space), params_table(space)
    return Arch(space, tuple(best.choices), meta={
        "flops_m": round(flops.of(best.choices) / 1e6, 3), "params_m": round(params.of(best.choices) / 1e6, 4),
        "bn_score": round(bn_table.of(best.choices), 6),
        "found_by": {"method": best.method, "indicator": settings.indicator, "score": best.score,
                     "budget": budget.shown, "budget_unit": budget.unit, "supernet": info["source"],
                     "train_mode": info["config"].get("train_mode"),
                     "bn_params": info["config"].get("bn_params"),
                     "sampler": info["config"].get("sampler"),
                     "epochs_trained": len(info["history"]), "data": trained.data.name, "seed": settings.seed,
                     "recipe": settings.recipe, "gamma_init": info["config"].get("gamma_init"),
                     "limit_train": settings.limit_train},
    })


def main(argv: list[str] | None = None) -> int:
    """``tools/search.py``: parse ``argv``, run, return the exit code (2 with one ``error:`` line on bad input)."""
    return cli.main(build_parser(), run, argv)


