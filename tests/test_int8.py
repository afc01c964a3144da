"""int8 inference on the CPU: a checkpoint's linear and LSTM/GRU layers in dynamic int8
(``--compute-type int8``), and int8 ONNX files from ``asr export --compute-type int8``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_model, save_checkpoint
from asr.cli import main
from asr.config import ExperimentConfig
from asr.inference import DeviceError, load_recognizer, quantize_int8
from asr.metrics import corpus_errors
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary

# The stated tolerance, over the demo's model on noise-free espeak-ng sentences: the int8
# transcripts differ from the float32 ones in at most 5% of their characters, and score within
# 3 points of WER of them. (The demo model measured 1.8% and 0.4 on 60 test utterances;
# scripts/bench_transcribe.py reports the full test set.)
MAX_CER_BETWEEN = 0.05
MAX_WER_CHANGE = 0.03


def _checkpoint(path: Path, **settings) -> Path:
    torch.manual_seed(0)
    cfg = ExperimentConfig(model=ModelConfig(**{"hidden": 32, "layers": 2, **settings}))
    model = AcousticModel(cfg.model)
    model.set_normalization(torch.randn(80) - 8, torch.rand(80) + 2)
    save_checkpoint(path, model, cfg, Vocabulary())
    return path


@pytest.mark.parametrize("settings", [{}, {"cell": "gru"}, {"cell": "rnn"}, {"encoder": "conformer", "stack": 4,
                                                                                  "frontend": "conv"}],
                         ids=["lstm", "gru", "rnn", "conformer"])
def test_int8_replaces_the_weight_layers_and_keeps_the_outputs_close(settings: dict, tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "m.pt", **settings)
    float_model = load_model(path)
    int8 = load_recognizer(path, "cpu", "int8")
    kinds = {type(m).__module__ for m in int8.model.modules()}
    assert "torch.ao.nn.quantized.dynamic.modules.linear" in kinds
    if settings.get("cell") in (None, "gru") and "encoder" not in settings:
        assert "torch.ao.nn.quantized.dynamic.modules.rnn" in kinds
    assert isinstance(next(iter(float_model.model.parameters())), torch.nn.Parameter)  # the float one is untouched
    waves = torch.randn(2, 24000) * 0.1
    lengths = torch.tensor([24000, 15000])
    expected, expected_lengths = float_model.log_probs(waves, lengths)
    got, got_lengths = int8.log_probs(waves, lengths)
    assert torch.equal(got_lengths, expected_lengths) and got.shape == expected.shape
    assert (got.exp() - expected.exp()).abs().max() < 0.05  # probabilities within 5 points


def test_int8_is_for_the_cpu(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "m.pt")
    with pytest.raises(DeviceError, match="int8 runs on the CPU"):
        load_recognizer(path, "cuda", "int8")


def test_quantize_int8_leaves_the_model_it_was_given_as_it_was(tmp_path: Path) -> None:
    model = load_model(_checkpoint(tmp_path / "m.pt")).model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_int8(model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and not any("quantized" in type(m).__module__ for m in model.modules())


def test_int8_onnx_export_is_smaller_marked_and_runs(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from asr.export import OnnxModel

    path = _checkpoint(tmp_path / "m.pt", hidden=96)
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "f.onnx")]) == 0
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "q.onnx"), "--compute-type", "int8"]) == 0
    assert "quantised" in capsys.readouterr().out
    float_model, int8_model = OnnxModel(tmp_path / "f.onnx"), OnnxModel(tmp_path / "q.onnx")
    assert int8_model.int8 and not float_model.int8
    assert (tmp_path / "q.onnx").stat().st_size < 0.5 * (tmp_path / "f.onnx").stat().st_size
    waves, lengths = torch.randn(1, 16000) * 0.1, torch.tensor([16000])
    expected, _ = float_model.log_probs(waves, lengths)
    got, _ = int8_model.log_probs(waves, lengths)
    assert (got.exp() - expected.exp()).abs().max() < 0.05
    assert load_recognizer(tmp_path / "q.onnx", "cpu", "int8").int8
    with pytest.raises(DeviceError, match="asr export --compute-type int8"):
        load_recognizer(tmp_path / "f.onnx", "cpu", "int8")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_trained_model_int8_transcripts_agree_with_float32(trained_model: Path, tmp_path: Path, capsys) -> None:
    from asr.corpora.synthetic.recordings import clean_utterances

    utterances = clean_utterances(tmp_path / "corpus", count=40, speakers=4)
    manifest = tmp_path / "m.jsonl"
    assert main(["prepare", str(tmp_path / "corpus" / "test"), "--out", str(manifest)]) == 0
    hypotheses, scores = {}, {}
    for compute_type in ("float32", "int8"):
        out = tmp_path / compute_type
        capsys.readouterr()
        assert main(["evaluate", "--model", str(trained_model), "--manifest", str(manifest), "--device", "cpu",
                     "--compute-type", compute_type, "--out-dir", str(out), "--json", "--decoder", "greedy"]) == 0
        scores[compute_type] = json.loads(capsys.readouterr().out)["wer"]
        hypotheses[compute_type] = [line.partition(" ")[2] for line in (out / "hyp.txt").read_text().splitlines()]
    assert len(hypotheses["int8"]) == len(utterances)
    _, chars = corpus_errors(list(zip(hypotheses["float32"], hypotheses["int8"])))
    assert chars.rate <= MAX_CER_BETWEEN, (chars.rate, scores)
    assert abs(scores["int8"] - scores["float32"]) <= MAX_WER_CHANGE, scores
