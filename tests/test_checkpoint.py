import io

import pytest
import torch

from asr.checkpoint import CheckpointError, load_model, save_checkpoint
from asr.config import ExperimentConfig
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary


def _model() -> tuple[AcousticModel, ExperimentConfig]:
    cfg = ExperimentConfig(model=ModelConfig(hidden=32, layers=2, stack=3))
    model = AcousticModel(cfg.model)
    model.set_normalization(torch.randn(80), torch.rand(80) + 0.5)
    return model.eval(), cfg


def test_save_load_gives_identical_log_probs(tmp_path):
    model, cfg = _model()
    feats, lengths = torch.randn(3, 50, 80), torch.tensor([50, 31, 7])
    expected, expected_lengths = model(feats, lengths)
    save_checkpoint(tmp_path / "m.pt", model, cfg, Vocabulary())
    loaded = load_model(tmp_path / "m.pt")
    got, got_lengths = loaded.model(feats, lengths)
    assert torch.equal(got, expected) and torch.equal(got_lengths, expected_lengths)
    assert loaded.config == cfg and loaded.vocab == Vocabulary()
    assert torch.equal(loaded.model.feat_mean, model.feat_mean)


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, cfg = _model()
    save_checkpoint(tmp_path / "m.pt", model, cfg, Vocabulary())
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["format_version"] == 1 and raw["config"]["model"]["hidden"] == 32


class _Exploit:
    def __reduce__(self):
        return (print, ("this would have run code",))


def test_pickle_that_runs_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"format": "asr-checkpoint", "payload": _Exploit()}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert "this would have run code" not in capsys.readouterr().out


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an asr checkpoint"):
        load_model(tmp_path / "other.pt")
    model, cfg = _model()
    save_checkpoint(tmp_path / "old.pt", model, cfg, Vocabulary(), format_version=0)
    with pytest.raises(CheckpointError, match="format version 0"):
        load_model(tmp_path / "old.pt")


def test_atomic_save_keeps_previous_file_on_failure(tmp_path, monkeypatch):
    model, cfg = _model()
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, cfg, Vocabulary())
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .No space left on device.; the previous"):
        save_checkpoint(path, model, cfg, Vocabulary())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
