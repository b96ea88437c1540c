"""Does the search beat random? -- the logic behind ``tools/verify.py``.

The searched arch and N random archs drawn uniformly from the same budget are each retrained from scratch with
:class:`~bnnas.training.retrainer.Retrainer` on one short schedule, with S seeds, and scored on the data's ``val`` split (which
the search never sees). The statistics live in small pure functions (:func:`arch_stats`, :func:`summarize`, and
:mod:`bnnas.trust.verdicts.headroom` for whether the random archs differ at all) so they can be checked on hand-made
accuracies; :func:`run` does the training, resuming per run from ``WORK/<arch>/seed<s>``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from bnnas.core.arch import Arch, load_arch
from bnnas.core.flops import flops_table
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.outputs.jsonable import to_jsonable
from bnnas.outputs.progress import progress_bar
from bnnas.search.common import FeasibleSampler, budget_limit, check_budget, num_choices, subnet_keys

if TYPE_CHECKING:  # annotations only: torch and the trainers load when a run needs them
    import torch

    from bnnas.data import ClassificationData
    from bnnas.training.retrainer import RetrainConfig
    from bnnas.trust.verdicts.headroom import Headroom

log = logging.getLogger("bnnas")

RESULT_NAME = "result.json"
DEFAULT_EPOCHS = 5  # short on purpose: long enough to rank archs, short enough for N + 1 archs x S seeds
CONFIDENCE = 0.95


# -- statistics (pure) -----------------------------------------------------------------------------------------------
@dataclass
class ArchStats:
    name: str
    accs: dict[int, float]  # seed -> held-out top-1
    mean: float
    std: float | None  # sample std (ddof 1) over seeds; None with 1 seed
    ci95: float | None  # half-width of the 95 % t-interval of the mean; None (undefined) with 1 seed

    @property
    def n(self) -> int:
        return len(self.accs)


@dataclass
class VerifyStats:
    searched: ArchStats
    random: list[ArchStats]
    pool: ArchStats  # the random archs' per-arch means as one sample ("accs" keyed by arch index)
    pool_median: float
    pool_std: float | None  # std (ddof 1) of the random archs' means; None with 1 random arch
    target: float | None  # median + 1 std of the random means; None with 1 random arch
    percentile: float  # of the searched mean among the random means (scipy percentileofscore, kind 'rank')
    target_met: bool | None  # searched mean >= target (and > median); None with 1 random arch
    untrained: bool  # no arch above 1.5x chance: the numbers compare untrained nets
    beats: bool  # target met and something was learned
    best_random: str  # the random arch with the highest mean
    gap: float  # searched mean - best random arch's mean
    headroom: Headroom | None  # do the random archs differ beyond seed noise? None below 2 archs x 2 seeds
    outcome: str  # beats | missed | no-headroom | untrained | untested
    verdict: str


@dataclass
class VerifyConfig:
    """What ``run`` compares: the searched arch against N random archs of the budget, S seeds each."""

    random: int = 5  # random archs drawn uniformly under the same budget
    seeds: int = 2  # training seeds per arch (0..S-1)
    train_subset: int | None = None  # train on a fixed random subset of K training images
    flops_m: float | None = None  # budget in MFLOPs (None: the search's, from arch.json)
    sample_seed: int = 0  # seed of the random-arch draw
    show_progress: bool = True


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float | None, float | None]:
    """(mean, sample std, half-width of the two-sided t-interval); std and half-width are None for one value."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, None, None
    sd = float(x.std(ddof=1))
    return mean, sd, float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * sd / math.sqrt(len(x)))


def arch_stats(name: str, accs: dict[int, float]) -> ArchStats:
    mean, sd, half = t_interval([accs[s] for s in sorted(accs)])
    return ArchStats(name, dict(sorted(accs.items())), mean, sd, half)


def summarize(searched: dict[int, float], random: dict[str, dict[int, float]],
              chance: float | None = None) -> VerifyStats:
    """Compare the searched arch's per-seed accuracies with those of each random arch (name -> seed -> accuracy).

    The target is searched mean >= median + 1 std of the random archs' means, and strictly above the median (with no
    spread among the random archs a tie would otherwise pass). ``chance`` (1 / classes): when no arch gets above 1.5x
    chance, nothing learned enough to be compared, and the verdict says so whatever the numbers. With at least 2
    random archs of 2 seeds each, :func:`~bnnas.trust.verdicts.headroom.headroom` says whether they differ beyond
    seed noise, which tells "the search missed" from "nothing to find here"."""
    from scipy import stats

    from bnnas.trust.verdicts.headroom import headroom

    if not searched or not random or not all(random.values()):
        raise ValueError("need at least one seed for the searched arch and for every random arch")
    s = arch_stats("searched", searched)
    rs = [arch_stats(name, accs) for name, accs in random.items()]
    means = [r.mean for r in rs]
    pool = arch_stats("random pool", dict(enumerate(means)))
    median = float(np.median(means))
    target = median + pool.std if pool.std is not None else None
    pct = float(stats.percentileofscore(means, s.mean, kind="rank"))
    untrained = chance is not None and max([s.mean, *means]) < 1.5 * chance
    target_met = None if target is None else bool(s.mean >= target and s.mean > median)
    beats = bool(target_met) and not untrained
    best = max(rs, key=lambda r: r.mean)
    room = headroom([list(r.accs.values()) for r in rs]) if len(rs) >= 2 and min(r.n for r in rs) >= 2 else None
    outcome, verdict = _verdict(pct, beats, untrained, chance, target, room)
    return VerifyStats(s, rs, pool, median, pool.std, target, pct, target_met, untrained, beats, best.name,
                       s.mean - best.mean, room, outcome, verdict)


def _verdict(pct: float, beats: bool, untrained: bool, chance: float | None, target: float | None,
             room: Headroom | None) -> tuple[str, str]:
    """(outcome, verdict sentence) of :func:`summarize`; a miss says why: untrained, untested, missed or no headroom."""
    if beats:
        return "beats", f"search beats random (searched at percentile {pct:.0f}, >= random median + 1 std)"
    verdict = f"no evidence the search beats random (searched at percentile {pct:.0f})"
    if untrained:
        return "untrained", verdict + (f"; every arch is near chance level ({100 * chance:.3g} %), "
                                       "train longer (--epochs)")
    if target is None:
        return "untested", verdict + "; one random arch has no spread, use --random >= 2"
    if room is None:
        return "untested", verdict + "; headroom untested, use --seeds >= 2"
    if room.differ:
        return "missed", verdict + (f", although the random archs differ beyond seed noise (ANOVA p = {room.p:.2g}): "
                                    "the search missed")
    return "no-headroom", (f"no detectable headroom: the random archs of this budget do not differ beyond seed "
                           f"noise on this data (ANOVA p = {room.p:.2g}; arch means spread {100 * room.arch_sd:.2f} "
                           f"pp, seed noise {100 * room.seed_sd:.2f} pp), so this run cannot show a search's worth "
                           f"(searched at percentile {pct:.0f})")


def fmt_ci(a: ArchStats, scale: float = 100.0) -> str:
    """'93.12 ± 1.05 %' or '93.12 % (1 seed: CI undefined)'."""
    if a.ci95 is None:
        return f"{scale * a.mean:.2f} % ({a.n} {'seed' if a.n == 1 else 'value'}: CI undefined)"
    return f"{scale * a.mean:.2f} ± {scale * a.ci95:.2f} %"


# -- random archs under the budget -----------------------------------------------------------------------------------
def draw_random_archs(searched: Arch, budget: float, n: int, seed: int = 0) -> list[Arch]:
    """n distinct archs drawn uniformly among those of ``searched.space`` with FLOPs <= ``budget`` (MACs), never the
    searched arch itself (training it twice would only duplicate a point). Deterministic in ``seed`` and
    prefix-stable in ``n``: one draw at a time from one stream, so ``--random 8`` extends ``--random 5``."""
    space = searched.space
    nc = num_choices(space)
    sampler = FeasibleSampler(nc, flops_table(space), budget)
    base = int(nc.max())
    seen: set = set()
    key = subnet_keys(np.asarray([searched.choices], dtype=np.int64), base)
    seen.add(key.tolist()[0] if isinstance(key, np.ndarray) else key[0])
    rng = np.random.default_rng(seed)
    out: list[Arch] = []
    for i in range(n):
        row = sampler.sample(rng, 1, seen, max_draws=200_000)  # ~1 s: a space this budget nearly exhausts gives up
        if not len(row):
            raise BNNASError(f"only {len(out)} distinct archs other than the searched one fit "
                             f"{budget / 1e6:.2f} MFLOPs in {space.name}; lower --random")
        out.append(Arch(space, tuple(int(c) for c in row[0]), {"random_index": i, "sample_seed": seed}))
    return out


# -- training runs ---------------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    name: str  # "searched", "random0", ...
    arch: Arch
    flops: float  # MACs at the space's input size


def _result_key(cand: Candidate, cfg: RetrainConfig, data: ClassificationData) -> dict:
    """What a finished run must match to be reused instead of retrained."""
    from bnnas.training.retrainer import RetrainConfig

    conf = asdict(cfg)
    return {"ops": cand.arch.ops, "space": cand.arch.space.name, "num_classes": cand.arch.space.num_classes,
            "data": data.name, "train_size": len(data.train),
            "config": {k: conf[k] for k in RetrainConfig.RESUME_KEYS}}


@contextmanager
def _run_log(run_dir: Path) -> Iterator[None]:
    """Send the retrainer's per-epoch lines to the run's own log.txt, keeping the console to one line per run."""
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = log.handlers[:]
    fh = logging.FileHandler(run_dir / "log.txt")
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    log.handlers = [fh]
    try:
        yield
    finally:
        fh.close()
        log.handlers = saved


def train_one(cand: Candidate, cfg: RetrainConfig, data: ClassificationData, run_dir: Path,
              device: torch.device) -> dict:
    """Retrain one (arch, seed), or reuse its finished result; returns the run's record (``skipped`` says which)."""
    from bnnas.training.retrainer import LAST_NAME, Retrainer

    key = _result_key(cand, cfg, data)
    done = run_dir / RESULT_NAME
    if done.is_file():
        rec = json.loads(done.read_text())
        if {k: rec.get(k) for k in key} == key:
            return {**rec, "skipped": True}
        raise BNNASError(f"{run_dir} holds a finished run of another arch or recipe; use another --work-dir")
    last = run_dir / LAST_NAME
    if last.is_file():
        log.info("resuming %s/seed%d from %s", cand.name, cfg.seed, last)
    with _run_log(run_dir):
        trainer = Retrainer(cand.arch, data, cfg, run_dir, device, show_progress=False)
        res = trainer.fit(trainer.existing_checkpoint())  # Retrainer refuses a last.pth of other settings
        trainer.write_metrics()
    rec = {**key, "name": cand.name, "seed": cfg.seed, "flops": cand.flops,
           # the last epoch's accuracy: picking the best epoch on val would select on the held-out data
           "top1": res.history[-1].top1, "best_top1": res.best.top1, "best_epoch": res.best.epoch,
           "epochs": len(res.history), "seconds": round(res.seconds, 2)}
    atomic_write_text(done, json.dumps(rec, indent=2) + "\n")
    return {**rec, "skipped": False}


def resolve_budget(arch: Arch, flops_m: float | None) -> tuple[float, str]:
    """(budget in MACs, where it came from): --flops, else the search's MFLOPs budget, else the searched arch's own
    FLOPs (a latency budget or a preset: random archs then cost at most what the searched one does)."""
    own = flops_table(arch.space).of(arch.choices)
    if flops_m is not None:
        return flops_m * 1e6, "--flops"
    fb = arch.meta.get("found_by") or {}
    if fb.get("budget_unit") == "MFLOPs" and isinstance(fb.get("budget"), (int, float)):
        return float(fb["budget"]) * 1e6, "the search's budget (arch.json found_by)"
    why = f"a {fb.get('budget_unit')} budget" if fb.get("budget_unit") else "no search budget in the arch file"
    return own, f"the searched arch's own FLOPs ({why})"


# -- reports ---------------------------------------------------------------------------------------------------------
def report_lines(st: VerifyStats, cands: list[Candidate]) -> list[str]:
    """The console summary (also the core of verify.md)."""
    from bnnas.trust.verdicts.headroom import describe as describe_headroom

    by = {c.name: c for c in cands}
    lines = []
    for a in [st.searched, *st.random]:
        seeds = ", ".join(f"{100 * v:.2f}" for v in a.accs.values())
        lines.append(f"  {a.name:<9} {by[a.name].flops / 1e6:7.2f} MFLOPs  top-1 {fmt_ci(a)}  (seeds: {seeds})")
    pool = fmt_ci(st.pool) if st.pool.ci95 is not None else f"{100 * st.pool.mean:.2f} % (1 arch: CI undefined)"
    lines.append(f"  random pool: {pool} (mean of {len(st.random)} arch means, 95% t-CI), median "
                 f"{100 * st.pool_median:.2f} %" + (f", std {100 * st.pool_std:.2f} %" if st.pool_std is not None
                                                     else ""))
    tgt = (f"target median + 1 std = {100 * st.target:.2f} %: {'met' if st.target_met else 'not met'}"
           if st.target is not None else "target undefined (needs >= 2 random archs)")
    lines.append(f"  searched {100 * st.searched.mean:.2f} % at percentile {st.percentile:.0f} of the random archs; "
                 + tgt)
    best = next(r for r in st.random if r.name == st.best_random)
    lines.append(f"  gap to the best random arch ({st.best_random}, {100 * best.mean:.2f} %): "
                 f"{100 * st.gap:+.2f} pp")
    lines.append("  headroom: " + (describe_headroom(st.headroom) if st.headroom is not None
                                   else "untested (needs >= 2 random archs with >= 2 seeds each)"))
    return lines


def write_md(path: Path, st: VerifyStats, cands: list[Candidate], head: str, lines: list[str]) -> Path:
    by = {c.name: c for c in cands}
    rows = ["| arch | MFLOPs | ops | top-1 per seed (%) | mean ± 95% CI |", "|---|---|---|---|---|"]
    for a in [st.searched, *st.random]:
        seeds = ", ".join(f"{s}: {100 * v:.2f}" for s, v in a.accs.items())
        rows.append(f"| {a.name} | {by[a.name].flops / 1e6:.2f} | `{' '.join(by[a.name].arch.ops)}` | {seeds} | "
                    f"{fmt_ci(a)} |")
    text = "\n".join(["# Does the search beat random?", "", head, "", *rows, "", "```", *lines, "```", "",
                      f"**Verdict: {st.verdict}.**", "", "![accuracy vs FLOPs](verify.png)", ""])
    return atomic_write_text(path, text)


def _load_searched(arch_file: str, data_source: str | None, plan: VerifyConfig,
                   recipe: RetrainConfig) -> tuple[Arch, ClassificationData]:
    """The searched arch and the data it is verified on (split with the search's seed)."""
    from bnnas.data import build_classification_data

    arch0 = load_arch(arch_file)
    found_by = arch0.meta.get("found_by") or {}
    # the search's data seed: on the digits it fixes the train/val split, so val stays the images the search never saw
    data_seed = int(found_by.get("seed", 0) or 0)
    data = build_classification_data(data_source, recipe.input_size, 0, data_seed, limit_train=plan.train_subset)
    if found_by.get("data") and found_by["data"] != data.name:
        log.warning("the arch was searched on %r but is verified on %r", found_by["data"], data.name)
    return load_arch(arch_file, num_classes=data.num_classes), data


def _candidates(arch: Arch, budget: float, plan: VerifyConfig) -> list[Candidate]:
    """The searched arch first, then ``plan.random`` random archs of the budget."""
    cost = flops_table(arch.space)
    if cost.of(arch.choices) > budget_limit(budget):
        log.warning("the searched arch (%.2f MFLOPs) is over the budget of %.2f MFLOPs",
                    cost.of(arch.choices) / 1e6, budget / 1e6)
    check_budget(cost, budget)
    randoms = draw_random_archs(arch, budget, plan.random, plan.sample_seed)
    cands = [Candidate("searched", arch, cost.of(arch.choices))]
    cands += [Candidate(f"random{i}", a, cost.of(a.choices)) for i, a in enumerate(randoms)]
    return cands


def _headline(cands: list[Candidate], plan: VerifyConfig, recipe: RetrainConfig, data: ClassificationData,
              budget: float, budget_src: str) -> str:
    """One sentence saying what is compared, how it is trained and where it is scored."""
    return (f"{cands[0].arch.space.name}: searched arch ({cands[0].flops / 1e6:.2f} MFLOPs) vs {plan.random} random "
            f"archs <= {budget / 1e6:.2f} MFLOPs ({budget_src}, sample seed {plan.sample_seed}); "
            f"{plan.seeds} seed(s) x {recipe.epochs} epochs, batch {recipe.batch_size}, "
            f"peak LR {recipe.peak_lr():.3g}, on {data.name} ({len(data.train)} training images); held-out top-1 on "
            f"its val split ({len(data.val)} images), last epoch")


def _train_all(cands: list[Candidate], plan: VerifyConfig, recipe: RetrainConfig, data: ClassificationData,
               work: Path, device: torch.device) -> tuple[dict[str, dict[int, float]], list[dict]]:
    """Every (arch, seed) retrained or reused: (arch name -> seed -> top-1, one record per run)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    jobs = [(c, s) for c in cands for s in range(plan.seeds)]
    accs: dict[str, dict[int, float]] = {c.name: {} for c in cands}
    runs: list[dict] = []
    with logging_redirect_tqdm(loggers=[log]):
        bar = progress_bar(jobs, plan.show_progress, desc="verify runs", unit="run")
        for c, s in bar:
            run_dir = work / c.name / f"seed{s}"
            rec = train_one(c, dataclasses.replace(recipe, seed=s), data, run_dir, device)
            accs[c.name][s] = rec["top1"]
            runs.append({k: rec[k] for k in ("name", "seed", "top1", "best_top1", "epochs", "seconds", "skipped")})
            log.info("%s %s/seed%d: top-1 %.2f%% (last of %d epochs), %.2f MFLOPs, %.1fs",
                     "skipped (finished)" if rec["skipped"] else "finished", c.name, s, 100 * rec["top1"],
                     rec["epochs"], c.flops / 1e6, rec["seconds"])
        bar.close()
    return accs, runs


def _print_summary(head: str, lines: list[str], st: VerifyStats, work: Path) -> None:
    print(f"verify: {head}")
    print("\n".join(lines))
    print(f"verdict: {st.verdict}")
    print(f"outputs: {work / 'verify.json'}, {work / 'verify.md'}, {work / 'verify.png'}")


def run(arch_file: str, data_source: str | None, plan: VerifyConfig, recipe: RetrainConfig, device: torch.device,
        work: Path) -> dict:
    """Retrain the searched arch of ``arch_file`` and ``plan.random`` random archs of its budget with ``recipe``,
    ``plan.seeds`` seeds each, on ``data_source`` (None: the default built-in set); report into ``work`` (locked by
    the caller)."""
    from bnnas.outputs.plots import plot_verify

    arch, data = _load_searched(arch_file, data_source, plan, recipe)
    budget, budget_src = resolve_budget(arch, plan.flops_m)
    cands = _candidates(arch, budget, plan)
    head = _headline(cands, plan, recipe, data, budget, budget_src)
    log.info("verify %s", head)

    t0 = time.perf_counter()
    accs, runs = _train_all(cands, plan, recipe, data, work, device)
    st = summarize(accs["searched"], {c.name: accs[c.name] for c in cands[1:]}, chance=1.0 / data.num_classes)
    lines = report_lines(st, cands)
    plot_verify(st, {c.name: c.flops for c in cands}, budget, work / "verify.png")
    write_md(work / "verify.md", st, cands, head, lines)
    doc = {"arch_file": str(arch_file), "space": arch.space.name, "data": data.name, "train_size": len(data.train),
           "val_size": len(data.val), "budget_mflops": budget / 1e6, "budget_source": budget_src,
           "sample_seed": plan.sample_seed, "seeds": plan.seeds, "config": asdict(recipe),
           "archs": [{"name": c.name, "ops": c.arch.ops, "choices": list(c.arch.choices), "mflops": c.flops / 1e6,
                      "top1": {str(k): v for k, v in accs[c.name].items()}} for c in cands],
           "stats": to_jsonable(asdict(st), nan_to_none=True), "runs": runs,
           "seconds": round(time.perf_counter() - t0, 2)}
    atomic_write_text(work / "verify.json", json.dumps(doc, indent=2) + "\n")
    _print_summary(head, lines, st, work)
    return doc
