"""``bnnas search`` / ``tools/search.py``: train (or reuse) a BN-only supernet, score its ops, search, report."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bnnas.core.arch import Arch, save_arch
import bnnas.cli.common as cli
from bnnas.cli.defaults import resolve_recipe
from bnnas.cli.search_flags import add_arguments, supernet_config
from bnnas.cli.search_records import Budget, SearchOutcome, SearchSettings
from bnnas.cli.search_report import write_outputs
from bnnas.data import ClassificationData, build_classification_data
from bnnas.training.distributed import init_distributed
from bnnas.trust.verdicts.early_bird import EarlyBirdStopper
from bnnas.errors import BNNASError
from bnnas.trust.verdicts.evidence import bn_free_mask, check_learning
from bnnas.core.flops import flops_table, params_table
from bnnas.indicators.bn import ScoreTable, bn_score_table
from bnnas.indicators.registry import as_scorer, build_indicator
from bnnas.outputs.results import announce, result_tag, tagged
from bnnas.search import EvolutionConfig, SearchResult, evolutionary_search, exact_search, num_choices, random_search
from bnnas.core.space import SearchSpace, get_space
from bnnas.core.supernet import Supernet
from bnnas.training.supernet_source import SupernetSource, train_or_load_supernet
from bnnas.outputs.workdir import hold_work_dir

log = logging.getLogger("bnnas")


DESCRIPTION = "BN-NAS: train a BN-only supernet, then find the best subnet under a FLOPs/latency budget."


def build_parser() -> argparse.ArgumentParser:
    return cli.command_parser(add_arguments, DESCRIPTION)


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


