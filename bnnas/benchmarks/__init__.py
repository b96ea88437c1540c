"""Published tables of trained architectures: ground truths a study reads instead of retraining.
``load_benchmark(name)`` gives keys, per-seed accuracies, FLOPs, params and each key's canonical network."""

from bnnas.benchmarks.table import (
    BENCHMARKS, BenchmarkInfo, BenchmarkTable, canonical_key, load_benchmark, same_dataset,
)

__all__ = ["BENCHMARKS", "BenchmarkInfo", "BenchmarkTable", "canonical_key", "load_benchmark", "same_dataset"]
