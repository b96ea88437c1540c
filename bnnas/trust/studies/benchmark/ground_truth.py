"""Our own ground truth: archs of a benchmark space trained from scratch on built-in data, written as a benchmark table.

A published table (NAS-Bench-Macro: CIFAR-10) can only be read through proxy data here, which mixes an indicator's
quality with the domain shift. This trains a few of the same keys on the data the supernets see, with the
benchmark's own recipe (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine), several seeds each:

* ``band`` keys sit inside one FLOPs band around the space's median (does an indicator rank archs of one budget?);
* ``spread`` keys cover the rest of the FLOPs range (and so depth).

Every (key, seed) training is one work item whose result is appended to ``results.rank{R}.jsonl`` as soon as it is
done, so a killed run resumes losing at most the item in flight; under torchrun the ranks take turns down the item
list. The table (``{"meta": ..., "archs": {key: row}}``, rows in the published format) is written at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from bnnas.benchmarks.table import canonical_key
from bnnas.core.arch import Arch
from bnnas.core.flops import flops_table, params_table
from bnnas.core.space import SearchSpace
from bnnas.data import ClassificationData
from bnnas.data.datasets import limit_training
from bnnas.errors import BNNASError
from bnnas.outputs.checkpoint import atomic_write_text
from bnnas.training.distributed import DistInfo
from bnnas.training.proxy import ProxyConfig, train_from_scratch

log = logging.getLogger("bnnas")

FORMAT = "bnnas.ground-truth/1"
RESULTS_GLOB = "results.rank*.jsonl"


def benchmark_recipe(epochs: int, batch_size: int = 64) -> ProxyConfig:
    """NAS-Bench-Macro's recipe (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine to 0) without warm-up, label
    smoothing or dropout; channels-last on CPU for speed."""
    return ProxyConfig(epochs=epochs, batch_size=batch_size, lr=0.1, warmup_epochs=0.0, momentum=0.9,
                       weight_decay=5e-4, grad_clip_norm=0.0, channels_last_cpu=True)


@dataclass
class GroundTruthConfig:
    band: int = 8  # distinct networks inside the FLOPs band
    spread: int = 8  # distinct networks spread over the rest of the FLOPs range
    band_width: float = 0.08  # the band: median FLOPs x (1 +- band_width)
    band_seeds: int = 2  # the committed table; 3 was planned, 2 fitted the session (docs/indicator_trust.md)
    spread_seeds: int = 2
    epochs: int = 5
    batch_size: int = 64
    train_images: int = 5000  # a fixed random subset of the training split (all archs see the same images)
    test_images: int | None = None  # the first N of the test split (None: all of it)
    seed: int = 0  # picks the keys and the image subset; training seeds are 0 .. seeds-1
    keys: tuple[str, ...] = ()  # explicit keys instead of band + spread (all get band_seeds)
    pilot: int = 4  # band keys trained first with 2 seeds: an early read of the seed agreement

    def validate(self) -> None:
        if self.band < 0 or self.spread < 0 or self.band + self.spread + len(self.keys) == 0:
            raise BNNASError("--band and --spread must be >= 0 and name at least one arch")
        if not 0 < self.band_width < 1:
            raise BNNASError(f"--band-width must be in (0, 1) (got {self.band_width})")
        if min(self.band_seeds, self.spread_seeds, self.epochs, self.train_images, self.test_images or 1) < 1:
            raise BNNASError("--band-seeds, --spread-seeds, --epochs, --train-images and --test-images must be >= 1")


@dataclass
class WorkItem:
    key: str
    seed: int
    group: str  # band | spread | keys


@dataclass
class GroundTruth:
    space: SearchSpace
    items: list[WorkItem]
    results: dict[tuple[str, int], dict] = field(default_factory=dict)


def _distinct_keys(space: SearchSpace) -> tuple[list[str], np.ndarray]:
    """Every key of ``space`` that is its own canonical network, with its FLOPs."""
    ft = flops_table(space)
    keys, flops = [], []
    for choices in itertools.product(*[range(len(layer.choices)) for layer in space.layers]):
        arch = Arch(space, tuple(choices))
        key = arch.benchmark_key
        if key == canonical_key(space, key):
            keys.append(key)
            flops.append(ft.of(arch.choices))
    return keys, np.array(flops, dtype=np.float64)


def select_keys(space: SearchSpace, cfg: GroundTruthConfig) -> tuple[list[str], list[str]]:
    """(band keys, spread keys): ``cfg.band`` distinct networks drawn inside median FLOPs x (1 +- band_width), and
    ``cfg.spread`` evenly spaced in FLOPs rank outside the band, from the cheapest network to the dearest."""
    keys, flops = _distinct_keys(space)
    median = float(np.median(flops))
    inside = np.abs(flops / median - 1) <= cfg.band_width
    rng = np.random.default_rng([cfg.seed, 18])
    pool = np.flatnonzero(inside)
    if len(pool) < cfg.band:
        raise BNNASError(f"only {len(pool)} distinct networks within {cfg.band_width:.0%} of the median FLOPs; "
                         "widen --band-width or lower --band")
    band = sorted(rng.choice(pool, cfg.band, replace=False).tolist(), key=lambda i: flops[i])
    outside = np.flatnonzero(~inside)
    if len(outside) < cfg.spread:
        raise BNNASError(f"only {len(outside)} distinct networks outside the band; lower --spread")
    outside = outside[np.argsort(flops[outside], kind="stable")]
    spread = [int(outside[int(round(i))]) for i in np.linspace(0, len(outside) - 1, cfg.spread)]
    return [keys[i] for i in band], [keys[i] for i in spread]


def work_items(space: SearchSpace, cfg: GroundTruthConfig) -> list[WorkItem]:
    """Every (key, seed) to train. First a pilot (``cfg.pilot`` band keys spread over the band, seeds 0 and 1) whose
    seed agreement can be read early; then seed by seed, the most expensive first so the ranks' shares come out
    even."""
    if cfg.keys:
        groups = [("keys", list(cfg.keys), cfg.band_seeds)]
    else:
        band, spread = select_keys(space, cfg)
        groups = [("band", band, cfg.band_seeds), ("spread", spread, cfg.spread_seeds)]
    items = [WorkItem(k, s, g) for g, keys, seeds in groups for k in keys for s in range(seeds)]
    first_keys = groups[0][1]
    pilot = {first_keys[int(i)] for i in np.linspace(0, len(first_keys) - 1, min(cfg.pilot, len(first_keys)))}
    ft = flops_table(space)
    return sorted(items, key=lambda it: (not (it.key in pilot and it.seed < 2), it.seed,
                                         -ft.of(Arch.from_key(space, it.key).choices)))


def _recipe_key(recipe: ProxyConfig, data: ClassificationData) -> dict:
    p = {k: v for k, v in asdict(recipe).items() if k not in ("workers", "seed", "repeats")}
    return {"recipe": p, "data": data.name, "train": len(data.train), "test": len(data.val)}


def read_results(work_dir: Path, space: SearchSpace, recipe: ProxyConfig,
                 data: ClassificationData) -> dict[tuple[str, int], dict]:
    """Results already in ``work_dir`` for this space, recipe and data (another recipe's are ignored)."""
    want = {"space": space.name, **_recipe_key(recipe, data)}
    out: dict[tuple[str, int], dict] = {}
    for path in sorted(work_dir.glob(RESULTS_GLOB)):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill: that item is simply trained again
                log.warning("%s:%d: unreadable line skipped", path, n)
                continue
            if rec.get("setup") == want:
                out[(rec["key"], rec["seed"])] = rec["result"]
    return out


def train_items(gt: GroundTruth, data: ClassificationData, recipe: ProxyConfig, work_dir: Path,
                device: torch.device, dist: DistInfo) -> None:
    """Train this rank's share of the items not yet done, appending each result as it finishes."""
    setup = {"space": gt.space.name, **_recipe_key(recipe, data)}
    todo = [it for it in gt.items if (it.key, it.seed) not in gt.results]
    mine = todo[dist.rank::dist.world_size]
    log.info("ground truth: %d of %d trainings done; this process trains %d", len(gt.items) - len(todo),
             len(gt.items), len(mine))
    out = work_dir / f"results.rank{dist.rank}.jsonl"
    t0 = time.perf_counter()
    for n, it in enumerate(mine, 1):
        arch = Arch.from_key(gt.space, it.key)
        res = train_from_scratch(arch, data, replace(recipe, seed=it.seed, repeats=1), device)
        rec = {"key": it.key, "seed": it.seed, "setup": setup,
               "result": {"acc": res["acc"], "val_loss": res["val_loss"], "train_loss": res["train_loss"],
                          "seconds": res["seconds"]}}
        with open(out, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        gt.results[(it.key, it.seed)] = rec["result"]
        eta = (time.perf_counter() - t0) / n * (len(mine) - n)
        log.info("[%d/%d] %s seed %d (%s)  acc %.2f%%  %.0fs  eta %.0f min", n, len(mine), it.key, it.seed, it.group,
                 100 * res["acc"], res["seconds"], eta / 60)


def table_doc(gt: GroundTruth, cfg: GroundTruthConfig, recipe: ProxyConfig, data: ClassificationData,
              benchmark: str, command: str) -> dict:
    """The table in the published row format (accuracies in percent), with what made it under ``meta``."""
    ft, pt = flops_table(gt.space), params_table(gt.space)
    archs, groups = {}, {}
    for it in gt.items:
        groups.setdefault(it.key, it.group)
    for key, group in groups.items():
        # the configured seeds only: a work dir may hold more from an earlier, larger run
        seeds = sorted(it.seed for it in gt.items if it.key == key and (key, it.seed) in gt.results)
        accs = [round(100 * gt.results[(key, s)]["acc"], 2) for s in seeds]
        choices = Arch.from_key(gt.space, key).choices
        archs[key] = {"test_acc": accs, "mean_acc": round(float(np.mean(accs)), 4),
                      "std": round(float(np.std(accs)), 4), "flops": int(ft.of(choices)),
                      "params": int(pt.of(choices)), "group": group,
                      "seconds": round(sum(gt.results[(key, s)]["seconds"] for s in seeds), 1)}
    meta = {"format": FORMAT, "benchmark": benchmark, "space": gt.space.name, "dataset": data.name,
            "train_images": len(data.train), "test_images": len(data.val), "config": asdict(cfg),
            "recipe": _recipe_key(recipe, data)["recipe"], "accuracy": "final test top-1 of each seed (%)",
            "band": [k for k, g in groups.items() if g == "band"], "command": command,
            "train_seconds": round(sum(r["seconds"] for r in archs.values()), 1)}
    return {"meta": meta, "archs": archs}


def subset_data(data: ClassificationData, cfg: GroundTruthConfig) -> ClassificationData:
    """The first ``train_images`` of a seeded permutation of the training images (the same for every arch and
    seed), and the first ``test_images`` of the test split."""
    n = cfg.train_images
    if n > len(data.train):
        raise BNNASError(f"--train-images {n} is more than the {len(data.train)} training images of {data.name}")
    test = data.val if cfg.test_images is None else Subset(data.val, range(min(cfg.test_images, len(data.val))))
    return dataclasses.replace(limit_training(data, n, [cfg.seed, 60000]), val=test)


@dataclass(frozen=True)
class TableTarget:
    """What the finished table is called and where it goes besides the work dir."""

    benchmark: str
    command: str  # the command line that made it, kept in its meta
    out: Path | None = None


def run(space: SearchSpace, data: ClassificationData, cfg: GroundTruthConfig, work_dir: Path, target: TableTarget,
        device: torch.device, dist: DistInfo = DistInfo()) -> dict | None:
    """Train what is missing, then (main process) write ``ground_truth.json`` in ``work_dir`` and at ``target.out``."""
    cfg.validate()
    work_dir.mkdir(parents=True, exist_ok=True)
    data = subset_data(data, cfg)
    recipe = benchmark_recipe(cfg.epochs, cfg.batch_size)
    gt = GroundTruth(space, work_items(space, cfg))
    gt.results = read_results(work_dir, space, recipe, data)
    train_items(gt, data, recipe, work_dir, device, dist)
    if dist.enabled:
        import torch.distributed as tdist

        tdist.barrier()
        gt.results = read_results(work_dir, space, recipe, data)
    if not dist.is_main:
        return None
    doc = table_doc(gt, cfg, recipe, data, target.benchmark, target.command)
    text = json.dumps(doc, indent=1) + "\n"
    atomic_write_text(work_dir / "ground_truth.json", text)
    if target.out is not None:
        target.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target.out, text)
    return doc
