"""The error types a user can cause; the CLI turns each into one line, not a traceback."""

from __future__ import annotations

from asr.audio import AudioError
from asr.average import AverageError
from asr.checkpoint import CheckpointError
from asr.config import ConfigError
from asr.corpus_text import TextSourceError
from asr.data import ManifestError
from asr.download import DownloadError
from asr.export import OnnxDependencyError, OnnxModelError
from asr.inference import DeviceError
from asr.lm import LMDependencyError, LMError
from asr.synth import CorpusMismatchError, EspeakNotFoundError
from asr.text import UnknownCharacterError
from asr.train import TrainingError
from asr.tune import TuningError

USER_ERRORS: tuple[type[BaseException], ...] = (
    AudioError,
    AverageError,
    CheckpointError,
    ConfigError,
    ManifestError,
    DeviceError,
    OnnxDependencyError,
    OnnxModelError,
    DownloadError,
    LMError,
    LMDependencyError,
    EspeakNotFoundError,
    TextSourceError,
    CorpusMismatchError,
    UnknownCharacterError,
    TrainingError,
    TuningError,
)
# Any other OSError (disk full, read-only file system, no permission, no such file) is the
# system refusing what the user asked; the CLI reports its file name and reason in one line.
