import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "librispeech-sample"


@pytest.fixture(autouse=True)
def _threads():
    # Tests share two cores with each other's subprocesses; one thread each avoids oversubscription.
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def sample_dir() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip("shared LibriSpeech sample not present")
    return SAMPLE


@pytest.fixture
def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        pytest.skip("espeak-ng not installed")
    return path
