import gzip
import os
from pathlib import Path

import numpy as np

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# The suite runs on the small digits set: point the built-in default away from Fashion-MNIST (subprocesses inherit
# this); the Fashion-MNIST tests name their source explicitly.
os.environ["BNNAS_FASHION_MNIST"] = str(ROOT / "tests" / "no-fashion-mnist")
# Subprocesses (tools, torchrun, mim) import the checkout under test, also when another checkout is installed in the
# venv, as pyproject's pythonpath does for this process.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture(scope="session")
def digits():
    from bnnas.data import build_classification_data

    return build_classification_data("digits")


def subnet_features(net: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A SubNet's outputs at its space's feature layers (the last of each stride): what a backbone must reproduce."""
    x = net.stem(x)
    outs = []
    for i, layer in enumerate(net.layers):
        x = layer(x)
        if i in net.arch.space.feature_layers:
            outs.append(x)
    return outs


def one_line_error(rc: int, err: str, *needles: str) -> str:
    """Assert a failed command's stderr is exactly one ``error: ...`` line (exit 2) holding every needle."""
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), (rc, err)
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def write_fake_fashion(src: Path, n_train: int, n_test: int) -> Path:
    """A Fashion-MNIST install in the Debian package's layout (idx files, gzipped) of random images."""
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(src / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(src / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return src


def _write_idx(path: Path, arr: np.ndarray) -> None:
    """The standard idx format (big-endian header: 0, 0, type 0x08 = ubyte, ndim; then each dim), gzipped."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())
