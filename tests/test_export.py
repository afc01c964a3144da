"""ONNX export: the graph computes what the PyTorch model computes, at any batch and length."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import load_model, save_checkpoint
from asr.cli import main
from asr.config import ExperimentConfig
from asr.decode import GreedyDecoder
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.transcribe import transcribe_files

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from asr.export import OnnxDependencyError, OnnxModel, OnnxModelError, export_onnx  # noqa: E402
from model_checks import assert_onnx_matches  # noqa: E402


@pytest.fixture(scope="module", params=[dict(stack=3), dict(stack=4, frontend="conv", conv_channels=4)],
                ids=["stack", "conv"])
def exported(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    """A random-weight model with two layers (stacked frames or the conv front end), as a
    checkpoint and as ONNX."""
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    cfg = ExperimentConfig(model=ModelConfig(hidden=24, layers=2, **request.param))
    model = AcousticModel(cfg.model)
    model.set_normalization(torch.randn(80) - 8, torch.rand(80) + 2)
    save_checkpoint(folder / "model.pt", model, cfg, Vocabulary())
    export_onnx(load_model(folder / "model.pt"), folder / "model.onnx")
    return folder / "model.pt", folder / "model.onnx"


def test_onnx_log_probs_match_pytorch_at_any_shape(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    # Batch sizes and lengths other than the export example's, including lengths that do
    # not fill a whole stacked frame and a single frame.
    assert_onnx_matches(load_model(checkpoint), OnnxModel(path), ((1, 1), (1, 7), (3, 50), (4, 301), (2, 1000)),
                        scale=3.0, offset=-8.0)


def test_onnx_file_carries_vocabulary_and_config(exported: tuple[Path, Path]) -> None:
    checkpoint, path = exported
    loaded, onnx_model = load_model(checkpoint), OnnxModel(path)
    assert onnx_model.vocab == loaded.vocab and onnx_model.config == loaded.config
    graph = onnx.load(str(path))
    assert [i.name for i in graph.graph.input] == ["features", "lengths"]
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "time"


def test_transcribe_with_onnx_gives_the_pytorch_transcripts(exported: tuple[Path, Path], tmp_path: Path) -> None:
    checkpoint, path = exported
    rng = np.random.default_rng(0)
    files = []
    for i, seconds in enumerate((1.0, 2.5, 31.0)):
        files.append(tmp_path / f"{i}.wav")
        sf.write(files[-1], (rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32), 16_000)
    loaded, onnx_model = load_model(checkpoint), OnnxModel(path)
    by_torch = list(transcribe_files(loaded, files, GreedyDecoder(loaded.vocab)))
    by_onnx = list(transcribe_files(onnx_model, files, GreedyDecoder(onnx_model.vocab)))
    assert [t.text for t in by_onnx] == [t.text for t in by_torch]
    assert all(t.text for t in by_torch)  # random weights still emit letters: the check is not vacuous
    for a, b in zip(by_onnx, by_torch):
        assert [(w.start, w.end) for w in a.words] == [(w.start, w.end) for w in b.words]


def test_cli_export_and_transcribe(exported: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    checkpoint, _ = exported
    out = tmp_path / "cli.onnx"
    assert main(["export", "--model", str(checkpoint), "--out", str(out)]) == 0
    assert "matches PyTorch within" in capsys.readouterr().out
    sf.write(tmp_path / "a.wav", np.zeros(16_000, np.float32), 16_000)
    assert main(["transcribe", "--model", str(out), str(tmp_path / "a.wav")]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'a.wav'}\t")
    assert main(["transcribe", "--model", str(out), "--device", "cuda", str(tmp_path / "a.wav")]) == 2
    assert "ONNX models run on the CPU" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(OnnxModelError, match="not a readable ONNX model"):
        OnnxModel(tmp_path / "bad.onnx")


def test_evaluate_with_onnx_scores_what_pytorch_scores(exported: tuple[Path, Path], sample_dir: Path,
                                                        tmp_path: Path, capsys) -> None:
    """``asr evaluate --model model.onnx``: the same hypotheses, so the same WER and CER, as the
    checkpoint it was exported from, on real read speech (the shared LibriSpeech sample)."""
    checkpoint, path = exported
    manifest = tmp_path / "sample.jsonl"
    assert main(["prepare", str(sample_dir), "--out", str(manifest)]) == 0
    results = {}
    for model in (checkpoint, path):
        capsys.readouterr()
        out_dir = tmp_path / model.suffix[1:]
        assert main(["evaluate", "--model", str(model), "--manifest", str(manifest), "--json",
                     "--out-dir", str(out_dir)]) == 0
        summary = json.loads(capsys.readouterr().out)
        results[model.suffix] = summary, (out_dir / "hyp.trn").read_text()
    (torch_summary, torch_hyps), (onnx_summary, onnx_hyps) = results[".pt"], results[".onnx"]
    assert torch_summary["utterances"] == 11 and torch_summary["decoding"] == {"decoder": "greedy"}
    timed = ("output_dir", "decode_seconds")
    assert {k: v for k, v in onnx_summary.items() if k not in timed} == {
        k: v for k, v in torch_summary.items() if k not in timed}
    assert torch_summary["audio_seconds"] > 10 and onnx_summary["decode_seconds"] > 0
    assert onnx_hyps == torch_hyps
    assert torch_summary["substitutions"] + torch_summary["insertions"] > 0  # it emitted words: not vacuous


def test_missing_onnx_packages_give_one_line(exported: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys) -> None:
    checkpoint, _ = exported
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name in ("onnx", "onnxruntime"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    assert main(["export", "--model", str(checkpoint), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'asr[onnx]'" in err
    with pytest.raises(OnnxDependencyError, match="onnxruntime is not installed"):
        OnnxModel(tmp_path / "m.onnx")
