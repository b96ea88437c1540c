"""Datasets: the built-in sets (Fashion-MNIST from its Debian package, scikit-learn's digits) and ImageNet-style
folders."""

from bnnas.data.datasets import (BUILTIN_DATASETS, ClassificationData, build_classification_data, default_builtin,
                                 fashion_mnist_available, holdout_split, is_builtin)
from bnnas.data.seeded import SeededDataset, ResumableSampler

__all__ = ["BUILTIN_DATASETS", "ClassificationData", "default_builtin", "fashion_mnist_available", "holdout_split", "is_builtin", "ResumableSampler", "SeededDataset", "build_classification_data"]
