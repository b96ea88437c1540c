"""Loader for benchmark tables in NAS-Bench-Macro's JSON format (``{key: {test_acc, mean_acc, std, params, flops}}``).

A key is an arch of the benchmark's space written one digit a layer (:meth:`bnnas.core.arch.Arch.from_key`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from bnnas.core.arch import Arch, key_digit
from bnnas.core.space import SearchSpace, get_space, is_identity
from bnnas.errors import BNNASError

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class BenchmarkInfo:
    name: str
    space: str
    file: str  # under bnnas/benchmarks/data
    dataset: str  # what the archs were trained and tested on
    source: str
    licence: str
    description: str
    reference: str = ""  # a published table of the same keys this one is compared with


BENCHMARKS: dict[str, BenchmarkInfo] = {
    "nas-bench-macro": BenchmarkInfo(
        name="nas-bench-macro", space="nas-bench-macro", file="nas-bench-macro_cifar10.json", dataset="CIFAR-10",
        source="Su et al., CVPR 2021; repository xiusu/NAS-Bench-Macro, data/nas-bench-macro_cifar10.json",
        licence="Apache-2.0 (bnnas/benchmarks/data/LICENSE-nas-bench-macro)",
        description="6561 archs of 8 layers (identity / k3e3 / k5e6), CIFAR-10, 50 epochs, 3 seeds, best test top-1",
    ),
    "nas-bench-macro-fmnist": BenchmarkInfo(
        name="nas-bench-macro-fmnist", space="nas-bench-macro-res-half", file="nas-bench-macro-half_fashion-mnist.json",
        dataset="Fashion-MNIST", source="made by `bnnas ground-truth` (the command is in the file's meta)",
        licence="as bnnas", description="16 keys of nas-bench-macro-res at half width and 28 px, trained on a "
                                        "Fashion-MNIST subset with the benchmark's recipe; final test top-1 per seed",
        reference="nas-bench-macro",
    ),
}


def same_dataset(data_name: str, dataset: str) -> bool:
    """Whether a data set's name (``cifar10``) names a table's data set (``CIFAR-10``)."""
    return data_name.replace("-", "").lower() == dataset.replace("-", "").lower()


def canonical_key(space: SearchSpace, key: str) -> str:
    """The key of the network a benchmark actually trained for ``key``: inside each stage (a shape-changing layer
    and the stride-1 layers after it) the stride-1 identities move to the end, which leaves the function unchanged."""
    return _canonical(space, key, Arch.from_key(space, key).ops)


def _canonical(space: SearchSpace, key: str, ops: list[str]) -> str:
    out: list[str] = []
    stage: list[str] = []
    idle: list[str] = []
    for digit, op, layer in zip(key, ops, space.layers):
        if layer.stride != 1 or layer.cin != layer.cout:
            out += stage + idle
            stage, idle = [digit], []
        elif is_identity(op):
            idle.append(digit)
        else:
            stage.append(digit)
    return "".join(out + stage + idle)


@dataclass(frozen=True)
class BenchmarkTable:
    """One row per key, sorted by key. Accuracies in percent, as published."""

    info: BenchmarkInfo
    space: SearchSpace
    keys: tuple[str, ...]
    choices: np.ndarray  # (N, L) indices into each layer's choices
    accs: np.ndarray  # (N, S) per-seed accuracy (NaN where a key has fewer seeds)
    mean_acc: np.ndarray  # (N,)
    flops: np.ndarray  # (N,) as published
    params: np.ndarray  # (N,) as published
    canonical: tuple[str, ...]  # the key of the network trained for each key
    groups: tuple[str, ...] = ()  # our own tables: "band" (inside one FLOPs band) or "spread" per key

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def distinct(self) -> np.ndarray:
        """Mask of the rows that are the trained networks themselves (one per equivalence class)."""
        return np.array([k == c for k, c in zip(self.keys, self.canonical)])

    @property
    def band(self) -> np.ndarray:
        """Mask of the keys a ground truth drew inside one FLOPs band (none for a published table)."""
        return np.array([g == "band" for g in self.groups], dtype=bool) if self.groups else np.zeros(len(self), bool)

    def subset(self, mask: np.ndarray) -> "BenchmarkTable":
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return BenchmarkTable(self.info, self.space, tuple(self.keys[i] for i in idx), self.choices[idx],
                              self.accs[idx], self.mean_acc[idx], self.flops[idx], self.params[idx],
                              tuple(self.canonical[i] for i in idx),
                              tuple(self.groups[i] for i in idx) if self.groups else ())

    def restricted_to(self, space: SearchSpace) -> "BenchmarkTable":
        """The rows ``space`` can express (a space that fixes some layers holds part of the table), with
        ``choices`` indexing that space's layers."""
        digits = [{str(key_digit(space, op)) for op in layer.choices} for layer in space.layers]
        keep = np.array([all(d in ok for d, ok in zip(k, digits)) for k in self.keys])
        sub = self.subset(keep)
        choices = np.array([Arch.from_key(space, k).choices for k in sub.keys], dtype=np.int64).reshape(len(sub), -1)
        return BenchmarkTable(self.info, space, sub.keys, choices, sub.accs, sub.mean_acc, sub.flops, sub.params,
                              sub.canonical, sub.groups)

    def row(self, key: str) -> int:
        try:
            return self.keys.index(key)
        except ValueError:
            raise BNNASError(f"{self.info.name} has no key {key!r}") from None


def table_from_dict(info: BenchmarkInfo, raw: dict, num_classes: int | None = None) -> BenchmarkTable:
    """Check and index a table read from JSON; a malformed row is a one-line error naming it."""
    space = get_space(info.space, num_classes)
    if "archs" in raw:  # our own tables: {"meta": how it was made, "archs": the rows}
        raw = raw["archs"]
    keys = tuple(sorted(raw))
    if not keys:
        raise BNNASError(f"{info.name}: the table is empty")
    try:
        rows = [raw[k] for k in keys]
        seeds = max(len(r["test_acc"]) for r in rows)
        # our own tables give band keys more seeds than the rest: missing seeds are NaN
        accs = np.array([list(r["test_acc"]) + [np.nan] * (seeds - len(r["test_acc"])) for r in rows],
                        dtype=np.float64)
        mean = np.array([r.get("mean_acc", np.nanmean(accs[i])) for i, r in enumerate(rows)], dtype=np.float64)
        flops = np.array([r["flops"] for r in rows], dtype=np.int64)
        params = np.array([r["params"] for r in rows], dtype=np.int64)
        groups = tuple(str(r.get("group", "")) for r in rows)
    except (KeyError, TypeError, ValueError) as e:
        raise BNNASError(f"{info.name}: a row lacks test_acc/flops/params or they are ragged ({e})") from None
    archs = [Arch.from_key(space, k) for k in keys]  # parsed once for both the choices and the canonical keys
    choices = np.array([a.choices for a in archs], dtype=np.int64)
    canonical = tuple(_canonical(space, k, a.ops) for k, a in zip(keys, archs))
    return BenchmarkTable(info, space, keys, choices, accs, mean, flops, params, canonical,
                          groups if any(groups) else ())


@lru_cache(maxsize=4)
def load_benchmark(name: str) -> BenchmarkTable:
    """A shipped table by name (``nas-bench-macro``)."""
    if name not in BENCHMARKS:
        raise BNNASError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    info = BENCHMARKS[name]
    return table_from_dict(info, json.loads((DATA_DIR / info.file).read_text()))
