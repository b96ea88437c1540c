"""The defaults that depend on the data, in one place: the built-in 32 px sets vs an ImageNet-style folder.

``TABLE`` is keyed by what is trained (a supernet, a retrained subnet), ``RECIPES`` holds the supernet settings
that go together; every command fills its unset flags from here, so its --help and what it does cannot drift apart.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from bnnas.data import is_builtin
from bnnas.training.retrainer import DIGITS_EPOCHS, FULL_EPOCHS, RetrainConfig

BUILTIN, FOLDER = "builtin", "folder"

# the same for every command: loader workers (the built-in sets live in memory) and torch CPU threads (None: torch's)
_COMMON: dict[str, dict[str, Any]] = {
    BUILTIN: {"workers": 0, "threads": 1},
    FOLDER: {"workers": 8, "threads": None},
}
TABLE: dict[str, dict[str, dict[str, Any]]] = {
    # BN-only / all-parameters supernets (search, correlate, bias); holdout: images kept back for spos-acc
    "supernet": {BUILTIN: {"batch_size": 32, "space": "spos-small", "holdout": 300},
                 FOLDER: {"batch_size": 256, "space": "spos-imagenet", "holdout": 10000}},
    # a searched arch trained from scratch (retrain, verify); lr None: the rule scaled by the global batch
    "retrain": {BUILTIN: {"batch_size": 64, "epochs": DIGITS_EPOCHS, "lr": 0.2},
                FOLDER: {"batch_size": 128, "epochs": FULL_EPOCHS, "lr": None}},
}


def data_kind(data: str | None) -> str:
    """``builtin`` for None (the default set), fashion-mnist and digits; ``folder`` for a path."""
    return BUILTIN if is_builtin(data) else FOLDER


def for_kind(what: str, kind: str, key: str) -> Any:
    """The default of ``key`` for training ``what`` on data of ``kind`` (BUILTIN or FOLDER)."""
    row = TABLE[what][kind]
    return row[key] if key in row else _COMMON[kind][key]


def default(what: str, key: str, data: str | None) -> Any:
    """The default of ``key`` for training ``what`` ("supernet", "retrain") on ``data``."""
    return for_kind(what, data_kind(data), key)


def pick(value: Any, what: str, key: str, data: str | None) -> Any:
    """``value`` if the user gave it, else the table's default."""
    return default(what, key, data) if value is None else value


def describe(what: str, key: str) -> str:
    """``"32 on built-in data, 256 on a folder"``, for help strings."""
    return f"{for_kind(what, BUILTIN, key)} on built-in data, {for_kind(what, FOLDER, key)} on a folder"


def retrain_config(data: str | None, input_size: int, world_size: int = 1, **given: Any) -> RetrainConfig:
    """The retraining recipe for ``data``: the ``given`` settings that are not None, else the table's (epochs, batch,
    LR, workers), else :class:`RetrainConfig`'s own defaults; validated."""
    kind = data_kind(data)
    chosen = {key: for_kind("retrain", kind, key) for key in ("epochs", "batch_size", "lr", "workers")}
    chosen.update({k: v for k, v in given.items() if v is not None})
    cfg = RetrainConfig(input_size=input_size, world_size=world_size, **chosen)
    cfg.validate()
    return cfg


def default_threads(data: str | None, device: Any) -> int | None:
    """1 on the built-in data on CPU, else None (torch's choice)."""
    return _COMMON[BUILTIN]["threads"] if is_builtin(data) and device.type == "cpu" else None


@dataclass(frozen=True)
class Recipe:
    """Supernet defaults that go together; explicit --space / --gamma-init / --lr / --batch-size override them."""

    space_builtin: str  # space on the built-in 32 px data
    space_folder: str  # space on an ImageNet-style folder
    gamma_init: float
    lr: float | None = None  # None: the paper's rule, 0.8 x global batch / 1024 (at least 0.05)
    batch_size: int | None = None  # None: the table's supernet batch
    limit_train: int | None = None  # training images the supernet sees (None: all)


RECIPES = {
    "paper": Recipe(TABLE["supernet"][BUILTIN]["space"], TABLE["supernet"][FOLDER]["space"], 1.0),
    # measured in docs/bn_only_recipe.md: the paper's recipe stays at chance on the built-in data, this one learns
    "small-data": Recipe("spos-small-res", "spos-small-res", 0.0, lr=0.5, batch_size=64, limit_train=12000),
}


def resolve_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` with the supernet settings left unset filled from the recipe (--recipe, else the data's:
    small-data on built-in data, paper on a folder)."""
    given = {k: getattr(args, k, None) for k in ("recipe", "space", "gamma_init", "lr", "batch_size", "limit_train")}
    builtin = is_builtin(args.data)
    name = given["recipe"] or ("small-data" if builtin else "paper")
    r = RECIPES[name]
    out = argparse.Namespace(**vars(args))
    out.recipe = name
    out.space = given["space"] or (r.space_builtin if builtin else r.space_folder)
    out.gamma_init = r.gamma_init if given["gamma_init"] is None else given["gamma_init"]
    out.lr = r.lr if given["lr"] is None else given["lr"]
    out.batch_size = given["batch_size"] or r.batch_size or default("supernet", "batch_size", args.data)
    out.limit_train = r.limit_train if given["limit_train"] is None else given["limit_train"]
    return out
