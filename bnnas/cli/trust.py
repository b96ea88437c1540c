"""``bnnas correlate`` / ``bnnas bias`` / ``tools/correlation.py``: can the indicator be trusted on this data?

* ``rank`` (default) -- Kendall tau / Spearman rho of each indicator against from-scratch accuracy of K subnets;
* ``early-bird`` -- the arch ``--early-bird`` would pick vs the arch after the full schedule (takes tools/search.py's
  flags, since it must train exactly what search.py trains);
* ``bias`` -- share of conv ops the BN indicator picks in the biased vs the unbiased (BNNAS++) space
  (also ``tools/bias.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Callable

import bnnas.cli.common as cli
from bnnas.outputs.workdir import hold_work_dir
import bnnas.cli.flags as flags
import bnnas.cli.defaults as defaults
from bnnas.data.datasets import cifar10_root, is_builtin
from bnnas.errors import BNNASError

log = logging.getLogger("bnnas")


def _run_flags(p: argparse.ArgumentParser, work_dir: str) -> None:
    flags.add_run(p.add_argument_group("run"), work_dir, "seed", "device", "threads", "quiet", "debug")


def _proxy_args(p: argparse.ArgumentParser) -> None:
    from bnnas.training.proxy import ProxyConfig

    d = ProxyConfig()
    g = p.add_argument_group("from-scratch proxy training (the ground truth)")
    g.add_argument("--proxy-epochs", type=cli.positive_int, default=d.epochs, help="epochs per subnet")
    g.add_argument("--proxy-batch", type=cli.positive_int, default=d.batch_size, help="batch per subnet training")
    g.add_argument("--proxy-lr", type=cli.positive_float, default=d.lr, help="peak LR (cosine schedule)")
    g.add_argument("--proxy-repeats", type=cli.positive_int, default=d.repeats,
                   help="seeds per subnet, accuracies averaged")


def _proxy_cfg(args):
    from bnnas.training.proxy import ProxyConfig

    return ProxyConfig(epochs=args.proxy_epochs, batch_size=args.proxy_batch, lr=args.proxy_lr,
                       repeats=args.proxy_repeats, seed=args.seed)


RANK_DESCRIPTION = ("Rank correlation of indicators with from-scratch accuracy of K subnets spread over the FLOPs "
                    "range, or (--benchmark NAME) with a published table's accuracies, read instead of trained. "
                    "Multi-GPU: torchrun --nproc-per-node N tools/correlation.py rank ... shards the K trainings "
                    "over the ranks.")


def add_rank_arguments(p: argparse.ArgumentParser) -> None:
    from bnnas.trust.studies.benchmark.benchmark_study import BOOTSTRAP_RESAMPLES as BENCHMARK_RESAMPLES
    from bnnas.trust.studies.benchmark.benchmark_study import DEFAULT_INDICATORS as BENCHMARK_INDICATORS
    from bnnas.trust.studies.study_config import DEFAULT_INDICATORS
    from bnnas.trust.rank_stats import BOOTSTRAP_RESAMPLES

    g = p.add_argument_group("data and subnets")
    flags.add(g, "data")
    g.add_argument("--benchmark", default=None, metavar="NAME",
                   help="ground truth from a published table (nas-bench-macro) instead of training K subnets; its "
                        "space is searched, supernets train on --data (not the table's data set: proxy data), and "
                        "flops, params and depth are always in the table")
    g.add_argument("--benchmark-sample", type=cli.int_at_least(3), default=200,
                   help="with --benchmark: keys (stratified over FLOPs) that a per-subnet indicator scores; additive "
                        "ones score every key")
    g.add_argument("--space", default=None,
                   help=f"search space or space file (default: {defaults.describe('supernet', 'space')})")
    g.add_argument("--k", type=cli.int_at_least(2), default=8, help="subnets to train from scratch")
    g.add_argument("--max-flops", type=cli.positive_float, default=None, help="sample subnets up to this many MFLOPs")
    g.add_argument("--holdout", type=cli.nonneg_int, default=None,
                   help=f"training images held out for spos-acc (default: {defaults.describe('supernet', 'holdout')})")
    flags.add(g, "limit-train", help="train supernets and subnets on only this many training images (quick checks)")
    _proxy_args(p)
    g = p.add_argument_group("supernets and indicators")
    g.add_argument("--indicators", default=None,
                   help="comma list of name@bn / name@bnall / name@all / name@init (the indicator reads the BN-only "
                        "supernet with --bn-params, the BN-only one with every BN trained, the all-parameters one -- "
                        "so bn@all is the BN indicator of the all-parameters supernet -- or the untrained one) and "
                        f"the baselines flops, params, depth (default: {','.join(DEFAULT_INDICATORS)}; with "
                        f"--benchmark: {','.join(BENCHMARK_INDICATORS)})")
    flags.add(g, "epochs", aliases=("--bn-epochs",), default=10, help="BN-only supernet epochs (paper: 10)")
    g.add_argument("--all-epochs", type=cli.positive_int, default=10, help="all-parameters supernet epochs")
    flags.add(g, "batch-size", aliases=("--supernet-batch",),
              help=f"per-process batch of both supernets (default: {defaults.describe('supernet', 'batch_size')})")
    flags.add(g, "lr", aliases=("--supernet-lr",),
              help="peak LR of both supernets (default: tools/search.py's rule, 0.8 x global batch / 1024, >= 0.05)")
    g.add_argument("--bn-params", choices=["last", "all"], default="last",
                   help="which BNs train in the @bn supernet (@bnall always trains all)")
    g.add_argument("--gamma-init", type=cli.nonneg_float, default=1.0,
                   help="initial gamma of each residual candidate's indicator BN in the BN-only supernets "
                        "(1: paper; 0: tools/search.py's small-data recipe)")
    g.add_argument("--bootstrap", type=cli.nonneg_int, default=None,
                   help=f"bootstrap resamples for the 95%% CIs (0: none; default: {BOOTSTRAP_RESAMPLES}, or "
                        f"{BENCHMARK_RESAMPLES} with --benchmark, whose tables hold thousands of archs)")
    g.add_argument("--supernet-bn", default=None, help="reuse a BN-only supernet checkpoint")
    g.add_argument("--supernet-bnall", default=None,
                   help="reuse a BN-only supernet checkpoint trained with every BN (--bn-params all)")
    g.add_argument("--supernet-all", default=None, help="reuse an all-parameters supernet checkpoint")
    g.add_argument("--spos-calib-batches", type=cli.positive_int, default=10,
                   help="BN recalibration batches for spos-acc")
    flags.add(g, "workers")
    _run_flags(p, "runs/correlation")


EARLY_BIRD_DESCRIPTION = (
    "Train the full schedule once with tools/search.py's settings, replay --early-bird's stopper on the per-epoch op "
    "scores, and compare the exact-search arch at the stop epoch with the one at the end. Takes every "
    "tools/search.py flag (--early-bird itself is implied); the recipe defaults to the paper's.")


def add_early_bird_arguments(p: argparse.ArgumentParser) -> None:
    from bnnas.cli.search_flags import add_arguments

    add_arguments(p)
    p.set_defaults(work_dir="runs/early-bird", recipe="paper")  # this study compares against the paper's recipe
    g = p.add_argument_group("early-bird comparison")
    g.add_argument("--scores", default=None,
                   help="analyse an existing full-schedule history (op_scores.json or supernet.pth) instead of "
                        "training")
    g.add_argument("--retrain", action="store_true", help="also train both archs from scratch (proxy schedule)")
    _proxy_args(p)


BIAS_DESCRIPTION = ("Train a BN-only supernet in the biased (BN-NAS) and the unbiased (BNNAS++: BN after every "
                    "candidate) form of the same space and report the share of conv ops the search picks.")


def add_bias_arguments(p: argparse.ArgumentParser) -> None:
    flags.add(p, "data")
    p.add_argument("--biased-space", default="biased-small", help="BN-NAS's form: parameter-free candidates have no BN")
    p.add_argument("--unbiased-space", default="unbiased-small",
                   help="BNNAS++'s form: parameter-free candidates also end in a BN")
    flags.add(p, "epochs", default=10, help="BN-only supernet epochs")
    flags.add(p, "batch-size", help=f"per-process batch (default: {defaults.describe('supernet', 'batch_size')})")
    p.add_argument("--bn-params", choices=["last", "all"], default="last",
                   help="train only each op's last BN (official code) or every BN")
    p.add_argument("--indicator", default="bn", help="additive indicator used by the exact search")
    p.add_argument("--budgets", type=cli.positive_float_list, default=None,
                   help="comma list of MFLOPs budgets (default: spread over the range)")
    p.add_argument("--supernet-biased", default=None, help="reuse a trained biased-space supernet")
    p.add_argument("--supernet-unbiased", default=None, help="reuse a trained unbiased-space supernet")
    p.add_argument("--retrain", action="store_true",
                   help="also train the two archs picked at the space's default budget from scratch (proxy schedule)")
    _proxy_args(p)
    _run_flags(p, "runs/bias")


def _setup(args: argparse.Namespace):
    from bnnas.training.distributed import init_distributed

    dist, device = init_distributed(args.device)
    cli.set_threads(args.threads, args.data, device)
    return dist, device


# -- rank --------------------------------------------------------------------------------------------------------------
def _study_cfg(args: argparse.Namespace, default_indicators: tuple[str, ...], bootstrap: int, batch: int,
               workers: int):
    from bnnas.trust.studies.study_config import StudyConfig, SupernetSpec

    proxy = _proxy_cfg(args)
    proxy.workers = workers
    indicators = default_indicators if args.indicators is None else \
        tuple(s.strip() for s in args.indicators.split(",") if s.strip())
    return StudyConfig(
        k=args.k, seed=args.seed, indicators=indicators, proxy=proxy, max_flops=args.max_flops,
        spos_calib_batches=args.spos_calib_batches, bootstrap_resamples=bootstrap if args.bootstrap is None
        else args.bootstrap,
        bn=SupernetSpec("bn", args.epochs, batch, lr=args.lr, bn_params=args.bn_params, seed=args.seed,
                        checkpoint=args.supernet_bn, workers=workers, gamma_init=args.gamma_init),
        bnall=SupernetSpec("bn", args.epochs, batch, lr=args.lr, bn_params="all", seed=args.seed,
                           checkpoint=args.supernet_bnall, workers=workers, gamma_init=args.gamma_init),
        all=SupernetSpec("all", args.all_epochs, batch, lr=args.lr, seed=args.seed,
                         checkpoint=args.supernet_all, workers=workers))


@cli.with_exit_stack
def run_rank(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict | None:
    from bnnas.trust.studies.correlation.correlation import run_study
    from bnnas.trust.studies.study_config import DEFAULT_INDICATORS
    from bnnas.trust.studies.correlation.correlation_report import print_table
    from bnnas.trust.rank_stats import BOOTSTRAP_RESAMPLES
    from bnnas.trust.studies.study_data import study_data
    from bnnas.data import build_classification_data
    from bnnas.core.space import get_space

    if args.benchmark:
        return _run_benchmark(args, stack)
    work_dir = Path(args.work_dir)
    dist, device = _setup(args)
    space_name = args.space or defaults.default("supernet", "space", args.data)
    probe = get_space(space_name)
    if not is_builtin(args.data) and cifar10_root(args.data) is None and not (Path(args.data) / "val").is_dir():
        raise BNNASError(f"{args.data} has no val/ folder: the ranking study measures its ground truth on val/, which "
                         "must not overlap the training images the supernets and the spos-acc indicator use")
    base = build_classification_data(args.data, probe.input_size, 0, args.seed)
    holdout = defaults.pick(args.holdout, "supernet", "holdout", args.data)
    data = study_data(base, holdout, args.seed, limit_train=args.limit_train)
    space = get_space(space_name, data.num_classes)
    batch = defaults.pick(args.batch_size, "supernet", "batch_size", args.data)
    workers = defaults.pick(args.workers, "supernet", "workers", args.data)
    cfg = _study_cfg(args, DEFAULT_INDICATORS, BOOTSTRAP_RESAMPLES, batch, workers)
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # once the inputs have been checked
    doc = run_study(space, data, cfg, work_dir, device, dist, quiet=args.quiet)
    if doc is not None:
        print(f"\nranking study: {space.name}, K={cfg.k}, {doc['wall_seconds']:.0f}s -> "
              f"{work_dir / 'correlation.json'}")
        print(print_table(doc))
    return doc


def _run_benchmark(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict | None:
    from bnnas.benchmarks import load_benchmark
    from bnnas.data import build_classification_data
    from bnnas.outputs.table import format_table
    import bnnas.trust.studies.benchmark.benchmark_study as bs
    from bnnas.trust.studies.study_data import study_data

    from bnnas.core.space import get_space

    table = load_benchmark(args.benchmark)
    if args.space:  # a space that fixes some of the benchmark's layers ranks the keys it can express
        space = get_space(args.space)
        if space.benchmark != table.info.name:
            raise BNNASError(f"--benchmark {args.benchmark} ranks archs of space {table.info.space!r} (or one that "
                             f"fixes some of its layers), not {args.space!r}")
        table = table.restricted_to(space)
    work_dir = Path(args.work_dir)
    dist, device = _setup(args)
    batch = defaults.pick(args.batch_size, "supernet", "batch_size", args.data)
    workers = defaults.pick(args.workers, "supernet", "workers", args.data)
    cfg = bs.BenchmarkStudyConfig(_study_cfg(args, bs.DEFAULT_INDICATORS, bs.BOOTSTRAP_RESAMPLES, batch, workers),
                                  sample=args.benchmark_sample)
    data = None
    if bs.needs_data(bs.indicator_specs(cfg.study.indicators)):
        base = build_classification_data(args.data, table.space.input_size, 0, args.seed)
        holdout = defaults.pick(args.holdout, "supernet", "holdout", args.data)
        data = study_data(base, holdout, args.seed, limit_train=args.limit_train)
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # once the inputs have been checked
    doc = bs.run_benchmark_study(table, data, cfg, work_dir, device, dist, quiet=args.quiet)
    if doc is not None:
        print(f"\n{doc['benchmark']} ({doc['data_role']}): {doc['keys']} keys, {doc['wall_seconds']:.0f}s -> "
              f"{work_dir / 'correlation.json'}")
        print(format_table(bs.table_rows(doc), bs.table_header(doc)))
    return doc


# -- early-bird ------------------------------------------------------------------------------------------------------
def _full_schedule_history(args: argparse.Namespace, dist, device, work_dir: Path):
    """Train (or resume) the full schedule exactly as tools/search.py would, without its stopper (replayed later):
    (resolved args, space name, per-epoch score tables, training info, data), or None off rank 0."""
    from bnnas.cli.search_flags import supernet_config
    from bnnas.core.space import get_space
    from bnnas.data import build_classification_data
    from bnnas.training.supernet_source import SupernetSource, train_or_load_supernet
    from bnnas.training.supernet_trainer import scores_from_record

    args = defaults.resolve_recipe(args)
    probe = get_space(args.space)
    data = build_classification_data(args.data, probe.input_size, args.holdout, args.seed,
                                     limit_train=args.limit_train)  # as tools/search.py trains
    # the full schedule (no stopper): the stop is replayed below
    source = SupernetSource(work_dir, args.supernet, args.no_resume, args.quiet)
    _, train_info = train_or_load_supernet(get_space(args.space, data.num_classes), data, device, dist, source,
                                           supernet_config(args, dist.world_size))
    if not dist.is_main:
        return None
    return args, args.space, [scores_from_record(h) for h in train_info["history"]], train_info, data


@cli.with_exit_stack
def run_early_bird(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict | None:
    import bnnas.trust.verdicts.early_bird_compare as ebc
    from bnnas.data import build_classification_data
    from bnnas.core.space import get_space

    work_dir = Path(args.work_dir)
    dist, device = _setup(args)
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # once the inputs have been checked
    t0 = time.perf_counter()
    if args.scores:
        space_name, tables = ebc.load_history(args.scores)
        space_name = args.space or space_name
        if space_name is None:
            raise BNNASError(f"{args.scores} does not say which space it is from; pass --space")
        train_info, data = {"source": str(args.scores)}, None
    else:
        got = _full_schedule_history(args, dist, device, work_dir)
        if got is None:
            return None
        args, space_name, tables, train_info, data = got
    space = get_space(space_name, data.num_classes if data is not None else None)
    budget = (space.default_budget if args.flops is None else args.flops) * 1e6
    doc = ebc.compare_stop_vs_full(space, tables, budget, args.eb_threshold, args.eb_patience)
    doc.update({"space": space.name, "source": train_info["source"],
                "train_mode": train_info.get("config", {}).get("train_mode")})
    if args.retrain and doc["stop"] is not None:
        if data is None:
            data = build_classification_data(args.data, space.input_size, args.holdout, args.seed,
                                             limit_train=args.limit_train)
        doc["retrained"] = ebc.retrain_stop_and_final(doc, space, data, _proxy_cfg(args), device)
    doc["wall_seconds"] = time.perf_counter() - t0
    md = ebc.save_comparison(doc, tables, work_dir)
    print(md)
    return doc


# -- bias --------------------------------------------------------------------------------------------------------------
@cli.with_exit_stack
def run_bias(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict | None:
    import bnnas.trust.studies.bias.bias_study as bias_study
    from bnnas.data import build_classification_data
    from bnnas.core.space import get_space
    from bnnas.trust.studies.bias.bias_report import bias_md

    work_dir = Path(args.work_dir)
    dist, device = _setup(args)
    t_all = time.perf_counter()
    probe = get_space(args.biased_space)
    data = build_classification_data(args.data, probe.input_size, 0, args.seed)
    batch = defaults.pick(args.batch_size, "supernet", "batch_size", args.data)
    cfg = bias_study.BiasConfig(
        forms={"biased": (args.biased_space, args.supernet_biased),
               "unbiased": (args.unbiased_space, args.supernet_unbiased)},
        epochs=args.epochs, batch_size=batch, bn_params=args.bn_params, indicator=args.indicator,
        budgets=args.budgets, seed=args.seed, proxy=_proxy_cfg(args) if args.retrain else None, quiet=args.quiet)
    spaces = bias_study.bias_spaces(cfg.forms, data.num_classes)
    hold_work_dir(stack, work_dir, dist.is_main, dist.enabled)  # once the inputs have been checked
    out = bias_study.run_bias_study(spaces, data, cfg, work_dir, device, dist, started=t_all)
    if out is not None:
        print(bias_md(out))
    return out


SUMMARIES = {
    "rank": "rank correlation of each indicator with from-scratch accuracy of K subnets",
    "early-bird": "the arch --early-bird picks vs the one after the full schedule",
    "bias": "conv share the BN indicator picks in the biased vs the unbiased (BNNAS++) space",
}
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], object]]] = {
    "rank": (RANK_DESCRIPTION, add_rank_arguments, run_rank),
    "early-bird": (EARLY_BIRD_DESCRIPTION, add_early_bird_arguments, run_early_bird),
    "bias": (BIAS_DESCRIPTION, add_bias_arguments, run_bias),
}


def add_commands(sub: argparse._SubParsersAction, names: tuple[str, ...] = tuple(COMMANDS)) -> None:
    """One subparser per study in ``names``; each sets ``handler`` to its run function."""
    for name in names:
        description, add_arguments, run = COMMANDS[name]
        p = sub.add_parser(name, help=SUMMARIES[name], description=description)
        add_arguments(p)
        p.set_defaults(handler=run)


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(prog="correlation.py",
                           description="Can the indicator be trusted on this data? One study per command (rank when "
                                       "none is named).")
    add_commands(p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=cli.ArgumentParser))
    return p


def main(argv: list[str] | None = None) -> int:
    """``tools/correlation.py [rank|early-bird|bias] ...``: parse, run the study, return the exit code."""
    argv = cli.with_default_command(sys.argv[1:] if argv is None else list(argv), "rank")
    return cli.main(build_parser(), lambda args: args.handler(args), argv)
