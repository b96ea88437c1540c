"""Datasets: the built-in digits set (ships with scikit-learn) and ImageNet-style folders."""

from .datasets import ClassificationData, build_classification_data
from .seeded import SeededDataset, ResumableSampler

__all__ = ["ClassificationData", "ResumableSampler", "SeededDataset", "build_classification_data"]
