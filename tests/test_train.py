"""End to end on CPU: synthesize a few utterances, train, decode, score."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.checkpoint import load_model
from asr.config import DataConfig, ExperimentConfig, TrainConfig
from asr.corpora.librispeech import read_librispeech
from asr.corpora.synthetic.corpus import SynthConfig, synthesize_corpus
from asr.data import read_manifest, write_manifest
from asr.decode import GreedyDecoder
from asr.evaluate import decode_utterances, score
from asr.model import ModelConfig
from asr.train import train
from asr.trainer import amp_dtype, needs_loss_scaling


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("tiny")
    config = SynthConfig(
        text="generator", train_utterances=6, dev_utterances=0, test_utterances=0, test_indomain_utterances=0,
        test_engine_utterances=0, train_speakers=2, dev_speakers=0, test_speakers=0, test_indomain_speakers=0,
        test_engine_speakers=0, held_out_variants=(0, 0), noise=0.0, max_words=4, seed=3, jobs=1,
        # espeak-ng alone, unperturbed: the corpus this test was tuned on
        festival_share=0.0, warp_share=0.0, tempo_share=0.0, room_share=0.0,
        # No added lead-in or tail: with them this model stopped one blank short of WER 0
        # ("CAL" for "CALL") after 40 epochs; the test is about learning, not about silence.
        edge_silence=(0.0, 0.0),
    )
    synthesize_corpus(root / "corpus", config, progress=False)
    utterances, skipped = read_librispeech(root / "corpus" / "train")
    assert len(utterances) == 6 and not skipped
    write_manifest(utterances, root / "dev.jsonl")
    # Each utterance 20 times a manifest: one epoch is many steps, so per-epoch dev scoring
    # and checkpointing stay a small part of the test's time.
    write_manifest(utterances * 20, root / "train.jsonl")
    return root


def _config(corpus, epochs: int) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(train_manifests=(str(corpus / "train.jsonl"),), dev_manifest=str(corpus / "dev.jsonl")),
        model=ModelConfig(hidden=128, layers=2, stack=3, dropout=0.0),
        train=TrainConfig(
            epochs=epochs, max_batch_seconds=12.0, lr=5e-3, warmup_steps=20, spec_augment=False,
            num_workers=0, stats_utterances=6, log_every=5,
        ),
    )


@pytest.mark.slow
def test_tiny_model_overfits_to_wer_zero(tiny_corpus, tmp_path):
    state = train(_config(tiny_corpus, epochs=40), tmp_path, progress=False)
    assert state.best_wer == 0.0
    loaded = load_model(tmp_path / "best.pt")
    utterances = read_manifest(tiny_corpus / "dev.jsonl")
    decoded = decode_utterances(loaded, utterances, GreedyDecoder(loaded.vocab))
    assert not decoded.failures and score(utterances, decoded.texts).wer == 0.0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert losses[-1] < 0.1 * losses[0]
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_resume_continues_step_count(tiny_corpus, tmp_path):
    first = train(_config(tiny_corpus, epochs=2), tmp_path, progress=False)
    resumed = train(_config(tiny_corpus, epochs=3), tmp_path, resume=True, progress=False)
    assert resumed.epoch == 3
    steps_per_epoch = first.step // 2
    assert resumed.step == first.step + steps_per_epoch
    raw = torch.load(tmp_path / "last.pt", weights_only=True)
    assert raw["state"]["step"] == resumed.step and "optimizer" in raw


def test_a_run_resumes_in_the_other_recurrent_layout(tiny_corpus, tmp_path):
    """A run trained split (the CPU layout) continues fused (the GPU one): the weights,
    optimizer moments and checkpoint names carry over."""
    cfg = _config(tiny_corpus, epochs=1)
    train(cfg, tmp_path, progress=False)
    before = torch.load(tmp_path / "last.pt", weights_only=True)
    fused = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=2, recurrent_layout="fused"))
    state = train(fused, tmp_path, resume=True, progress=False)
    after = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state.epoch == 2 and list(after["model"]) == list(before["model"])
    moments = [s["exp_avg"] for s in after["optimizer"]["state"].values()]
    assert [m.shape for m in moments] == [s["exp_avg"].shape for s in before["optimizer"]["state"].values()]
    assert load_model(tmp_path / "last.pt").model.layout == "split"


def test_metrics_go_to_tensorboard_too(tiny_corpus, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(_config(tiny_corpus, epochs=1), tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert {"train/loss", "train/lr", "train/audio_seconds_per_second", "dev/wer", "dev/cer"} <= set(
        events.Tags()["scalars"])
    logged = [(e.step, e.value) for e in events.Scalars("train/loss")]
    assert logged == [(r["step"], pytest.approx(r["loss"])) for r in rows if r["kind"] == "train"]
    assert [e.step for e in events.Scalars("dev/wer")] == [r["step"] for r in rows if r["kind"] == "dev"]


def test_train_cli_errors_are_one_line(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("[train]\nepochs = 'many'\n")
    out = subprocess.run([sys.executable, "-m", "asr", "train", "--config", str(conf), "--exp-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "epochs" in out.stderr
    conf.write_text("[model]\nlayers = 1\n")
    out = subprocess.run([sys.executable, "-m", "asr", "train", "--config", str(conf), "--exp-dir", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "no training manifests" in out.stderr


def test_config_round_trips_through_dict():
    cfg = _config(Path("corpus"), 3)
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    assert dataclasses.asdict(cfg)["model"]["hidden"] == 128


@pytest.mark.slow
def test_feature_size_has_one_source_of_truth(tiny_corpus, tmp_path):
    """``features.n_mels`` sets the model's input size; a config that contradicts itself is one line."""
    conf = tmp_path / "c.toml"
    conf.write_text(f'[data]\ntrain_manifests = ["{tiny_corpus / "train.jsonl"}"]\n'
                    "[model]\nhidden = 16\nlayers = 1\n[train]\nepochs = 1\nmax_batch_seconds = 12.0\nnum_workers = 0\n")
    command = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--exp-dir", str(tmp_path / "exp")]
    out = subprocess.run(command + ["--set", "features.n_mels=64"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr  # stderr is a pipe: plain progress lines, no bar frames
    loaded = load_model(tmp_path / "exp" / "best.pt")
    assert loaded.config.features.n_mels == loaded.config.model.n_mels == 64
    assert loaded.model.feat_mean.shape == (64,)

    out = subprocess.run(command + ["--set", "model.n_mels=64"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "model.n_mels = 64 but features.n_mels = 80" in out.stderr


def test_loss_scaling_is_on_whenever_autocast_is_on_cuda():
    # Autocast runs cuDNN LSTMs in float16 even under bf16, so bf16 runs need scaling too.
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert needs_loss_scaling(torch.float16, cuda) and needs_loss_scaling(torch.bfloat16, cuda)
    assert not needs_loss_scaling(None, cuda)
    # A CPU's bf16 LSTM is true bf16, with fp32's exponent range.
    assert not needs_loss_scaling(torch.bfloat16, cpu)


def test_cpu_autocast_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    import asr.trainer

    cpu = torch.device("cpu")
    assert amp_dtype("off", cpu) is None and amp_dtype("fp16", cpu) is None
    monkeypatch.setattr(asr.trainer, "cpu_has_native_bf16", lambda: False)
    assert amp_dtype("auto", cpu) is None and amp_dtype("bf16", cpu) is None
    monkeypatch.setattr(asr.trainer, "cpu_has_native_bf16", lambda: True)
    assert amp_dtype("auto", cpu) is torch.bfloat16 and amp_dtype("bf16", cpu) is torch.bfloat16
