import os
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


@pytest.fixture
def random_checkpoint(tmp_path: Path) -> Path:
    """An untrained small model with plausible normalisation: it transcribes (nonsense) anything."""
    from asr.checkpoint import save_checkpoint
    from asr.config import ExperimentConfig
    from asr.model import AcousticModel, ModelConfig
    from asr.text import Vocabulary

    cfg = ExperimentConfig(model=ModelConfig(hidden=16, layers=1))
    model = AcousticModel(cfg.model)
    model.set_normalization(torch.full((80,), -8.0), torch.full((80,), 4.0))
    save_checkpoint(tmp_path / "random.pt", model, cfg, Vocabulary())
    return tmp_path / "random.pt"


# --- the demo's trained model --------------------------------------------------------------------
# Tests that take the ``trained_model`` fixture run on exp/synthetic/best.pt (or $ASR_TEST_MODEL)
# and skip without one, unless $ASR_REQUIRE_TRAINED_MODEL is set (CI, after the demo): then a
# missing model fails them. They must hold for any model the demo trains.

TRAINED = Path(os.environ.get("ASR_TEST_MODEL", REPO / "exp" / "synthetic" / "best.pt"))
_trained_tests: set[str] = set()
_trained_outcomes: dict[str, str] = {}


@pytest.fixture
def trained_model() -> Path:
    if not TRAINED.is_file():
        if os.environ.get("ASR_REQUIRE_TRAINED_MODEL"):
            pytest.fail(f"no trained model at {TRAINED}, and ASR_REQUIRE_TRAINED_MODEL is set: run bash scripts/demo.sh")
        pytest.skip(f"no trained model at {TRAINED} (bash scripts/demo.sh trains one)")
    return TRAINED


def pytest_collection_modifyitems(items) -> None:
    _trained_tests.update(item.nodeid for item in items if "trained_model" in getattr(item, "fixturenames", ()))


def pytest_runtest_logreport(report) -> None:
    if report.nodeid in _trained_tests and (report.when == "call" or report.outcome != "passed"):
        _trained_outcomes[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter) -> None:
    if not _trained_tests:
        return
    counts: dict[str, int] = {}
    for outcome in _trained_outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none run"
    terminalreporter.write_line(f"trained-model tests on {TRAINED}: {summary}")
