"""What a run was trained on, so a resume can refuse other data: root, class list, sample count (and world size)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from bnnas.data.datasets import ClassificationData


def _base(ds: Any) -> Any:
    """The dataset under Subset/SeededDataset wrappers (the one that knows its root and classes)."""
    seen = 0
    while hasattr(ds, "dataset") and seen < 10:
        ds = ds.dataset
        seen += 1
    return ds


def data_fingerprint(data: ClassificationData) -> dict[str, Any]:
    """Root (absolute; the data's name for built-in sets), class list digest, class and training-sample counts."""
    base = _base(data.train)
    root = getattr(base, "root", None)
    root = os.path.abspath(str(root)) if isinstance(root, (str, os.PathLike)) else data.name
    classes = getattr(base, "classes", None)
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(data.num_classes)]
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    return {"root": root, "num_classes": data.num_classes, "classes_sha1": digest, "train_size": len(data.train),
            "first_classes": names[:3]}


def fingerprint_diff(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """A readable list of what differs, or None when the data is the same."""
    out = []
    if old["root"] != new["root"]:
        out.append(f"root {old['root']} -> {new['root']}")
    if old["classes_sha1"] != new["classes_sha1"] or old["num_classes"] != new["num_classes"]:
        out.append(f"classes {old['num_classes']} ({', '.join(old['first_classes'])}, ...) -> "
                   f"{new['num_classes']} ({', '.join(new['first_classes'])}, ...)")
    if old["train_size"] != new["train_size"]:
        out.append(f"training images {old['train_size']} -> {new['train_size']}")
    return "; ".join(out) or None
