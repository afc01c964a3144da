"""The acoustic model's recurrent variants: lstm/gru/rnn, each bi- or unidirectional."""

import itertools
from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_model, save_checkpoint
from asr.config import ExperimentConfig, load_config
from asr.errors import ConfigError
from asr.features import FeatureConfig
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from model_checks import ctc_train_steps

VARIANTS = list(itertools.product(("lstm", "gru", "rnn"), (True, False)))
VOCAB = Vocabulary()


def _ids(variant):
    cell, bidirectional = variant
    return f"{cell}-{'bi' if bidirectional else 'uni'}"


def _model(cell: str, bidirectional: bool, **overrides) -> tuple[AcousticModel, ExperimentConfig]:
    settings = dict(n_mels=20, hidden=24, layers=2, stack=3, dropout=0.0, cell=cell, bidirectional=bidirectional)
    cfg = ExperimentConfig(features=FeatureConfig(n_mels=20), model=ModelConfig(**{**settings, **overrides}))
    torch.manual_seed(0)
    return AcousticModel(cfg.model), cfg


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two utterances of random features, each with a short transcript."""
    generator = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 60, 20, generator=generator)
    lengths = torch.tensor([60, 45])
    targets = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 0]])
    return feats, lengths, targets, torch.tensor([4, 3])


def _train_steps(model: AcousticModel, steps: int = 8) -> list[float]:
    """CTC training steps on :func:`_batch`; the loss of each."""
    return ctc_train_steps(model, *_batch(), steps=steps)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_variant_trains_saves_and_reloads(variant, tmp_path):
    model, cfg = _model(*variant)
    feats, lengths = _batch()[:2]
    losses = _train_steps(model)
    assert losses[-1] < losses[0]
    model.eval()
    expected, _ = model(feats, lengths)
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config.model.cell == variant[0] and loaded.config.model.bidirectional == variant[1]
    got, _ = loaded.model(feats, lengths)
    assert torch.equal(got, expected)


def test_parameter_counts_follow_the_cell():
    """Per direction and layer an LSTM has 4 gate blocks, a GRU 3 and a vanilla RNN 1."""
    def recurrent(cell, bidirectional):
        model, _ = _model(cell, bidirectional)
        return sum(p.numel() for layer in model.layers for p in layer.parameters())

    lstm, gru, rnn = (recurrent(c, True) for c in ("lstm", "gru", "rnn"))
    assert lstm * 3 == gru * 4 and lstm == rnn * 4
    # Unidirectional: half the directions, and the next layer reads half as many features.
    assert recurrent("lstm", False) < lstm / 2


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_unidirectional_model_is_causal_and_bidirectional_is_not(cell):
    t = 9  # output frame; it reads feature frames up to 3 * t + 2
    feats, lengths, _, _ = _batch()
    changed = feats.clone()
    changed[:, 3 * (t + 1) :] += torch.randn_like(changed[:, 3 * (t + 1) :])
    for bidirectional in (False, True):
        model, _ = _model(cell, bidirectional)
        model.eval()
        before, _ = model(feats, lengths)
        after, _ = model(changed, lengths)
        same_past = torch.equal(before[:, : t + 1], after[:, : t + 1])
        assert same_past != bidirectional, (cell, bidirectional)
        assert not torch.equal(before[:, t + 1 :], after[:, t + 1 :])


def test_old_checkpoints_load_as_the_bidirectional_lstm(tmp_path):
    """A checkpoint saved before the cell was a choice has no cell or bidirectional keys."""
    model, cfg = _model("lstm", True)
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    del raw["config"]["model"]["cell"], raw["config"]["model"]["bidirectional"]
    torch.save(raw, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.config.model == cfg.model
    feats, lengths, _, _ = _batch()
    assert torch.equal(loaded.model(feats, lengths)[0], model.eval()(feats, lengths)[0])


def test_unknown_cell_is_a_config_error(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[model]\ncell = "transformer"\n')
    with pytest.raises(ConfigError, match="cell = 'transformer': choose one of lstm, gru, rnn"):
        load_config(conf)
    assert load_config(conf, {"model.cell": "gru", "model.bidirectional": False}).model.width == 256


@pytest.mark.parametrize("conf", sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*/conf/*.toml")),
                         ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_recipe_config_loads_and_builds_its_model(conf):
    """A recipe's config is read only when its training starts, an hour into a run (the full
    config's synthesis comes first): a misspelt key or a bad value must fail here instead."""
    cfg = load_config(conf)
    with torch.device("meta"):  # shapes only: the LibriSpeech models hold hundreds of MB
        model = AcousticModel(cfg.model)
    assert model.output.out_features == cfg.model.vocab_size


def test_conv_frontend_trains_reloads_and_ignores_batch_padding(tmp_path):
    model, cfg = _model("lstm", True, frontend="conv", stack=4, conv_channels=4)
    feats, lengths = _batch()[:2]
    log_probs, out_lengths = model(feats, lengths)
    assert out_lengths.tolist() == [15, 12] and log_probs.shape[1] == 15  # ceil(T / 4)
    losses = _train_steps(model)
    assert losses[-1] < losses[0]
    model.eval()
    with torch.no_grad():
        together, _ = model(feats, lengths)
        alone, _ = model(feats[1:, :45], lengths[1:])  # the short one without the batch's padding
        assert (together[1, :12] - alone[0]).abs().max() < 1e-5
    save_checkpoint(tmp_path / "m.pt", model, cfg, VOCAB)
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config.model.frontend == "conv"
    assert torch.equal(loaded.model(feats, lengths)[0], together)


def test_conv_frontend_needs_an_even_stack():
    with pytest.raises(ValueError, match="stack must be even"):
        ModelConfig(frontend="conv", stack=3)
    with pytest.raises(ValueError, match="frontend"):
        ModelConfig(frontend="transformer")


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_fused_layout_matches_the_split_one_in_outputs_and_gradients(variant):
    """The cuDNN-style layout (one module per layer on packed sequences) against today's."""
    split, _ = _model(*variant, layers=3)
    fused = AcousticModel(split.cfg).set_layout("fused")
    fused.load_state_dict(split.state_dict())  # split names -> fused modules
    assert fused.layout == "fused" and split.layout == "split"
    feats, lengths, targets, target_lengths = _batch()
    outputs = []
    for model in (split, fused):
        lp, out_lengths = model(feats, lengths)
        torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths).backward()
        outputs.append((lp, out_lengths))
    (lp_split, out_lengths), (lp_fused, _) = outputs
    for i, n in enumerate(out_lengths.tolist()):  # valid frames only; padding is free to differ
        torch.testing.assert_close(lp_fused[i, :n], lp_split[i, :n], rtol=0, atol=1e-5)
    # Same parameters in the same order: an optimizer's state carries over between layouts.
    for (name, a), b in zip(split.named_parameters(), fused.parameters(), strict=True):
        assert a.shape == b.shape, name
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("variant", VARIANTS, ids=_ids)
def test_padded_layout_matches_the_split_one_where_lengths_are_equal(variant):
    """The fused module on the padded tensor (oneDNN's CPU layout): equal lengths give the
    split layout's outputs and gradients; a shorter sequence's backward direction starts in
    padding, which moves its outputs only a little."""
    split, _ = _model(*variant, layers=2)
    padded = AcousticModel(split.cfg).set_layout("padded")
    padded.load_state_dict(split.state_dict())
    assert padded.layout == "padded"
    feats, lengths, targets, target_lengths = _batch()
    equal = torch.full_like(lengths, int(lengths.max()))
    outputs = []
    for model in (split, padded):
        lp, out_lengths = model(feats, equal)
        torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths).backward()
        outputs.append(lp)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=1e-5)
    for (name, a), b in zip(split.named_parameters(), padded.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=1e-5, msg=name)
    # Unequal lengths: the longest sequence is exact; the others differ, boundedly.
    (lp_split, out_lengths), (lp_padded, _) = split(feats, lengths), padded(feats, lengths)
    longest = int(lengths.argmax())
    torch.testing.assert_close(lp_padded[longest], lp_split[longest], rtol=0, atol=1e-5)
    for i, n in enumerate(out_lengths.tolist()):
        assert (lp_padded[i, :n].exp() - lp_split[i, :n].exp()).abs().max() < 0.5


def test_a_checkpoint_loads_in_either_layout(tmp_path):
    model, cfg = _model("lstm", True)
    model.set_layout("fused")
    assert list(model.state_dict()) == list(AcousticModel(cfg.model).state_dict())  # stored under the split names
    save_checkpoint(tmp_path / "fused.pt", model, cfg, VOCAB)
    loaded = load_model(tmp_path / "fused.pt").model  # on the CPU: split
    assert loaded.layout == "split"
    round_trip = AcousticModel(cfg.model).set_layout("fused").set_layout("split")
    round_trip.load_state_dict(model.state_dict())
    for (name, a), b in zip(loaded.state_dict().items(), round_trip.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    feats, lengths, _, _ = _batch()
    model.eval()
    torch.testing.assert_close(loaded(feats, lengths)[0][1, :15], model(feats, lengths)[0][1, :15], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="layout"):
        model.set_layout("cudnn")
