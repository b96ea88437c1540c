"""The ranking study's split of the training images: the SPOS accuracy indicator's held-out set, carved out of training.

The ground truth is measured on ``val``; the indicator's held-out images come from the training split, so the two never
overlap (:func:`bnnas.data.build_classification_data`'s digits defaults do not guarantee that on their own).
"""

from __future__ import annotations

import dataclasses

from torch.utils.data import Subset

from bnnas.data import ClassificationData, holdout_split
from bnnas.errors import BNNASError


def study_data(data: ClassificationData, holdout: int, seed: int = 0,
               limit_train: int | None = None) -> ClassificationData:
    """Hold ``holdout`` training images out (eval transform) for the SPOS accuracy indicator; ``val`` stays the
    ground truth's. Everything else (supernets, from-scratch subnets) trains on the remaining training images, or on
    the first ``limit_train`` of them."""
    train_eval = data.train_eval if data.train_eval is not None else data.train
    n = len(data.train)
    if len(train_eval) != n:
        raise BNNASError("training set and its evaluation-transform copy differ in length; cannot split")
    if not 0 < holdout < n:
        raise BNNASError(f"--holdout must be between 1 and {n - 1} (training images: {n}), got {holdout}")
    keep, held = holdout_split(n, holdout, seed)
    if limit_train is not None:
        if limit_train < 1:
            raise BNNASError(f"--limit-train must be positive, got {limit_train}")
        keep = keep[:limit_train]
    # dataclasses.replace keeps every other field (e.g. a GPU-decode collate_fn / device_transform)
    return dataclasses.replace(data, train=Subset(data.train, keep), heldout=Subset(train_eval, held),
                               train_eval=Subset(train_eval, keep))
