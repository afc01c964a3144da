"""Experiment configuration: typed dataclasses read from a recipe's TOML file.

The whole configuration is saved inside every checkpoint (as plain dicts), so a checkpoint
rebuilds its model and features without the file it was trained from.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asr.bounds import above, at_least, between, check, one_of
from asr.errors import ConfigError
from asr.features import FeatureConfig, SpecAugmentConfig
from asr.model import ModelConfig
from asr.units import TextConfig

# How training on N devices adapts the one-device settings (asr.distributed explains each).
MULTI_GPU_RULES = ("keep-batch", "scale-lr")


@dataclass(frozen=True)
class DataConfig:
    train_manifests: tuple[str, ...] = ()  # JSON-lines manifests, concatenated
    dev_manifest: str = ""
    max_duration: float = 30.0  # seconds; longer training utterances are left out
    dev_max_utterances: int = 0  # 0 = all; a fixed subset keeps per-epoch dev scoring cheap

    def __post_init__(self) -> None:
        check(self, {"max_duration": above(0), "dev_max_utterances": at_least(0),
                     "train_manifests": (lambda v: all(isinstance(m, str) for m in v), "a list of manifest paths"),
                     "dev_manifest": (lambda v: isinstance(v, str), "a manifest path")})


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    max_batch_seconds: float = 160.0  # padded audio per batch (batch size x longest utterance)
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    final_lr_ratio: float = 0.02  # cosine decay ends at lr * final_lr_ratio
    grad_clip: float = 5.0  # max global gradient norm
    grad_accum: int = 1  # batches per optimizer step
    seed: int = 0
    num_workers: int = 1
    # auto: bf16 on a CPU with native bf16 (avx512_bf16 or AMX), bf16 (else fp16) on CUDA | bf16 |
    # fp16 (CUDA) | off; loss scaling on CUDA whenever on
    amp: str = "auto"
    spec_augment: bool = True
    sortagrad: bool = False  # first epoch from shortest to longest utterances
    stats_utterances: int = 400  # utterances sampled for feature normalisation statistics
    log_every: int = 25  # steps between metric lines
    keep_epochs: int = 0  # also keep the weights of the last N epochs (for averaging)
    checkpoint_every: int = 0  # optimizer steps between mid-epoch saves of last.pt (0: at epoch ends only)
    # A time budget in training-loop seconds (forward, backward and update; not dev scoring or
    # start-up), resumed runs included: training stops at the first optimizer step that reaches it,
    # and the lr decays over it instead of over ``epochs``, which becomes a cap. 0: no budget.
    max_train_seconds: float = 0.0
    # On N devices: keep-batch (the config's effective batch, lr and warm-up) | scale-lr (N x the
    # batch, sqrt(N) x lr); asr/distributed.py states the rule.
    multi_gpu: str = "keep-batch"
    # How the recurrent layers run: auto = fused (one cuDNN module per layer on packed sequences)
    # on CUDA, split (one module per direction on padded tensors, faster on CPU) elsewhere.
    # Checkpoints are the same in both.
    recurrent_layout: str = "auto"

    def __post_init__(self) -> None:
        check(self, {
            "epochs": at_least(1), "max_batch_seconds": above(0), "lr": above(0), "weight_decay": at_least(0),
            "warmup_steps": at_least(0), "final_lr_ratio": between(0, 1), "grad_clip": above(0),
            "grad_accum": at_least(1), "num_workers": between(0, 64), "amp": one_of("auto", "bf16", "fp16", "off"),
            "stats_utterances": at_least(1), "log_every": at_least(1), "keep_epochs": at_least(0),
            "checkpoint_every": at_least(0), "max_train_seconds": at_least(0), "multi_gpu": one_of(*MULTI_GPU_RULES),
            "recurrent_layout": one_of("auto", "split", "fused", "padded"),
        })


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)  # the units the model emits (asr/units.py)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        # One source of truth: the model reads as many bins as the features have.
        if self.model.n_mels != self.features.n_mels:
            raise ConfigError(f"model.n_mels = {self.model.n_mels} but features.n_mels = {self.features.n_mels}: "
                              "the model's input size is the number of mel bins; set features.n_mels only")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "ExperimentConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected sections of settings, got {type(raw).__name__}")
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(raw) - set(sections)
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)}; expected {sorted(sections)}")
        defaults = cls()
        built = {name: _build(type(getattr(defaults, name)), raw.get(name, {}), f"{source} [{name}]") for name in sections}
        if "n_mels" not in raw.get("model", {}):
            built["model"] = dataclasses.replace(built["model"], n_mels=built["features"].n_mels)
        try:
            return cls(**built)
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None


def _build(kind: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {type(values).__name__} {values!r:.60}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(fields)}")
    converted = {}
    for name, value in values.items():
        default = getattr(kind(), name)
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default is not None and not isinstance(value, type(default)):
            raise ConfigError(f"{where}: {name} = {value!r} should be of type {type(default).__name__}")
        converted[name] = value
    try:
        return kind(**converted)
    except ValueError as err:  # a dataclass's own check of its values
        raise ConfigError(f"{where}: {err}") from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read a TOML experiment config; ``overrides`` maps "section.key" to a value.

    Relative manifest paths are resolved against the current directory, as a recipe runs
    from its own folder.
    """
    path = Path(path)
    if not path.is_file():  # a FIFO would be read forever
        raise ConfigError(f"{path}: {'not a regular file' if path.exists() else 'no such config file'}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return ExperimentConfig.from_dict(raw, source=str(path))
