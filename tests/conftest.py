import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
# The suite runs on the small digits set: point the built-in default away from Fashion-MNIST (subprocesses inherit
# this); the Fashion-MNIST tests name their source explicitly.
os.environ["BNNAS_FASHION_MNIST"] = str(ROOT / "tests" / "no-fashion-mnist")


@pytest.fixture(scope="session")
def digits():
    from bnnas.data import build_classification_data

    return build_classification_data("digits")
