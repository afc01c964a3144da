"""The attention encoders (Transformer, Conformer) beside the recurrent one: training, saving
and reloading, independence from padding and batch, ONNX export, configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_model, save_checkpoint
from asr.config import ExperimentConfig, load_config
from asr.errors import ConfigError
from asr.features import FeatureConfig
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from model_checks import assert_onnx_matches, ctc_train_steps

VOCAB = Vocabulary()
ENCODERS = [
    {"encoder": "transformer"},
    {"encoder": "transformer", "positions": "sinusoidal"},
    {"encoder": "conformer"},
    {"encoder": "conformer", "frontend": "conv", "stack": 4, "conv_channels": 4},
]
IDS = ["transformer", "transformer-sinusoidal", "conformer", "conformer-conv"]


def _model(**overrides) -> tuple[AcousticModel, ExperimentConfig]:
    settings = {"n_mels": 20, "hidden": 24, "layers": 2, "stack": 3, "dropout": 0.1, "attention_heads": 4,
                "ff_multiplier": 2, "conv_kernel": 5}
    cfg = ExperimentConfig(features=FeatureConfig(n_mels=20), model=ModelConfig(**{**settings, **overrides}))
    torch.manual_seed(0)
    return AcousticModel(cfg.model), cfg


def _batch(frames: int = 60, lengths: tuple[int, ...] = (60, 45, 31)) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(len(lengths), frames, 20, generator=generator), torch.tensor(lengths)


def _train_steps(model: AcousticModel, steps: int = 8) -> list[float]:
    targets = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 0], [10, 11, 0, 0]])
    return ctc_train_steps(model, *_batch(), targets, torch.tensor([4, 3, 2]), steps=steps, lr=3e-3)


@pytest.mark.parametrize("settings", ENCODERS, ids=IDS)
def test_encoder_trains_saves_and_reloads_to_identical_log_probs(settings: dict, tmp_path: Path) -> None:
    model, cfg = _model(**settings)
    losses = _train_steps(model)
    assert losses[-1] < losses[0]
    model.eval()
    feats, lengths = _batch()
    with torch.no_grad():
        expected, _ = model(feats, lengths)
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config.model == cfg.model
    with torch.no_grad():
        assert torch.equal(loaded.model(feats, lengths)[0], expected)


@pytest.mark.parametrize("settings", ENCODERS, ids=IDS)
def test_valid_outputs_depend_neither_on_padding_nor_on_the_batch(settings: dict) -> None:
    model, _ = _model(**settings)
    _train_steps(model, steps=2)  # past the zero-initialised position biases
    model.eval()
    feats, lengths = _batch()
    noisy = feats.clone()
    for row, length in enumerate(lengths.tolist()):
        noisy[row, length:] = 1e3 * torch.randn_like(noisy[row, length:])  # garbage in the padding
    with torch.no_grad():
        together, out_lengths = model(feats, lengths)
        with_garbage, _ = model(noisy, lengths)
        for row, length in enumerate(lengths.tolist()):
            alone, alone_lengths = model(feats[row : row + 1, :length], lengths[row : row + 1])
            n = out_lengths[row]
            assert alone_lengths.item() == n
            assert (together[row, :n] - alone[0, :n]).abs().max() < 1e-5, row
            assert (with_garbage[row, :n] - alone[0, :n]).abs().max() < 1e-5, row
        # Another utterance in the batch changes nothing either.
        other = torch.cat([feats[:1], torch.randn(1, 60, 20)])
        pair, _ = model(other, torch.tensor([60, 60]))
        assert (pair[0] - together[0]).abs().max() < 1e-5


def test_attention_sees_the_whole_utterance() -> None:
    """Unlike a unidirectional recurrent model, an early output depends on late frames."""
    model, _ = _model(encoder="conformer")
    model.eval()
    feats, lengths = _batch(lengths=(60,))
    changed = feats.clone()
    changed[:, 50:] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(feats, lengths)[0][:, :3], model(changed, lengths)[0][:, :3])


def test_old_checkpoints_without_an_encoder_key_load_as_recurrent(tmp_path: Path) -> None:
    model, cfg = _model(encoder="rnn", hidden=16)
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    for key in ("encoder", "attention_heads", "ff_multiplier", "conv_kernel", "positions"):
        del raw["config"]["model"][key]
    torch.save(raw, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.config.model.encoder == "rnn" and loaded.model.encoder is None
    feats, lengths = _batch()
    with torch.no_grad():
        assert torch.equal(loaded.model(feats, lengths)[0], model.eval()(feats, lengths)[0])


@pytest.mark.parametrize("settings", [ENCODERS[0], ENCODERS[3]], ids=["transformer", "conformer-conv"])
def test_onnx_export_matches_pytorch(settings: dict, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from asr.export import OnnxModel, export_onnx

    model, cfg = _model(**settings)
    _train_steps(model, steps=2)
    model.set_normalization(torch.randn(20) * 0.1, torch.rand(20) + 0.5)
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    loaded = load_model(tmp_path / "m.pt")
    export_onnx(loaded, tmp_path / "m.onnx")
    onnx_model = OnnxModel(tmp_path / "m.onnx")
    # Lengths past the relative positions' clipping distance (64 steps) included.
    assert_onnx_matches(loaded, onnx_model, ((1, 1), (1, 7), (3, 50), (2, 400)), seed=2)


@pytest.mark.parametrize(("settings", "message"), [
    ('encoder = "lstm"', "encoder = 'lstm': choose one of rnn, transformer, conformer"),
    ('encoder = "conformer"\nbidirectional = false', "bidirectional = false"),
    ('encoder = "transformer"\nhidden = 30\nattention_heads = 4', "hidden = 30 must split evenly into 4"),
    ('encoder = "conformer"\nconv_kernel = 8', "conv_kernel .*odd"),
    ('encoder = "transformer"\npositions = "rotary"', "positions = 'rotary': choose one of relative, sinusoidal"),
])
def test_bad_encoder_settings_are_config_errors(settings: str, message: str, tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f"[model]\n{settings}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(conf)


@pytest.mark.parametrize("name", ["transformer", "conformer"])
def test_recipe_configs_build_their_encoders(name: str) -> None:
    cfg = load_config(Path(__file__).parents[1] / "recipes" / "synthetic" / "conf" / f"{name}.toml")
    assert cfg.model.encoder == name
    model = AcousticModel(cfg.model)
    feats = torch.randn(2, 100, cfg.features.n_mels)
    log_probs, _ = model(feats, torch.tensor([100, 70]))
    assert log_probs.shape[-1] == cfg.model.vocab_size
