"""Tuning alpha and beta, the tuning file, decoder options and the LM commands of the CLI."""

import json
import multiprocessing
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr.beam import BeamSearchDecoder
from asr.checkpoint import save_checkpoint
from asr.cli import main
from asr.config import ExperimentConfig
from asr.errors import ConfigError
from asr.data import Utterance, write_manifest
from asr.decode import GreedyDecoder, build_decoder
from asr.lm.load import NGramLM
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.lm.tune import TuningError, grid_points, parse_values, random_points, sweep
from asr.lm.weights_file import TunedWeights, decoding_config, find_tuned, store_tuned, tuning_file
from test_beam import TINY
from test_lm import _has_irstlm, log_probs_from, needs_kenlm, write_arpa

# After "A", the LM finds "A" 10^0.5 times likelier than "B": ln ratio 1.15 per unit of alpha.
BIGRAMS = {"A A": -0.1, "A B": -0.6}
# "A A", with the last word acoustically a little more like B (ln 0.55/0.35 = 0.45): an LM
# weight above 0.39 corrects it.
AMBIGUOUS = [{"A": 0.9}, {}, {" ": 0.9}, {"A": 0.35, "B": 0.55}]
# "A B", clearly B (ln 0.9/0.05 = 2.9): an LM weight above 2.5 breaks it.
CLEAR = [{"A": 0.9}, {}, {" ": 0.9}, {"A": 0.05, "B": 0.9}]


@pytest.fixture
def lm_file(tmp_path: Path) -> Path:
    return write_arpa(tmp_path / "lm.arpa", {"A": -0.5, "B": -0.5}, BIGRAMS)


@needs_kenlm
def test_sweep_picks_the_weight_that_fixes_the_ambiguous_word(lm_file: Path) -> None:
    log_probs = [log_probs_from(AMBIGUOUS)[0], log_probs_from(CLEAR)[0]]  # each (T, V)
    decoder = BeamSearchDecoder(TINY, beam_width=8, lm=NGramLM(lm_file))
    results = sweep(log_probs, ["A A", "A B"], decoder, grid_points((0.0, 1.0, 3.0), (0.0, 0.5)))
    assert len(results) == 6
    assert (results[0].alpha, results[0].wer) == (1.0, 0.0)
    assert [r.wer for r in results] == sorted(r.wer for r in results)
    wer = {(r.alpha, r.beta): r.wer for r in results}
    assert wer[0.0, 0.0] == wer[0.0, 0.5] == 0.25  # the acoustics alone get one word of four wrong
    # So much LM weight prefers saying nothing to saying "A B"; without a word bonus, to anything.
    assert (wer[3.0, 0.5], wer[3.0, 0.0]) == (0.5, 1.0)


@needs_kenlm
def test_with_weights_decodes_like_a_new_decoder(lm_file: Path) -> None:
    lm = NGramLM(lm_file)
    log_probs = (2.0 * torch.randn(3, 25, len(TINY), generator=torch.Generator().manual_seed(1))).log_softmax(-1)
    lengths = torch.tensor([25, 20, 9])
    base = BeamSearchDecoder(TINY, beam_width=6, lm=lm, alpha=0.1, beta=2.0)
    base(log_probs, lengths)  # fill its caches, which the copy must not reuse
    fresh = BeamSearchDecoder(TINY, beam_width=6, lm=lm, alpha=1.3, beta=-0.5)
    assert base.with_weights(1.3, -0.5)(log_probs, lengths) == fresh(log_probs, lengths)


@needs_kenlm
def test_parallel_sweep_gives_the_sequential_results(lm_file: Path) -> None:
    log_probs = list((2.0 * torch.randn(6, 20, len(TINY), generator=torch.Generator().manual_seed(2))).log_softmax(-1))
    references = ["A B", "B A", "A A B", "B", "A", "B B A"]
    decoder = BeamSearchDecoder(TINY, beam_width=4, lm=NGramLM(lm_file))
    points = grid_points((0.0, 0.5, 1.0, 2.0), (-1.0, 0.0, 1.5))
    sequential = sweep(log_probs, references, decoder, points, jobs=1)
    assert sweep(log_probs, references, decoder, points, jobs=2) == sequential
    assert len({(r.wer, r.cer) for r in sequential}) > 1  # the points differ, so the order is tested


@needs_kenlm
def test_decoder_pickles_for_worker_processes(lm_file: Path) -> None:
    # Workers started by spawn or forkserver get the decoder pickled; its LM loads again there.
    log_probs = (2.0 * torch.randn(2, 15, len(TINY), generator=torch.Generator().manual_seed(3))).log_softmax(-1)
    lengths = torch.tensor([15, 11])
    decoder = BeamSearchDecoder(TINY, beam_width=4, lm=NGramLM(lm_file), alpha=0.8, beta=0.5)
    expected = decoder(log_probs, lengths)  # also fills the caches, whose KenLM states do not pickle
    copy = pickle.loads(pickle.dumps(decoder))
    assert copy.lm.path == lm_file and copy(log_probs, lengths) == expected


@needs_kenlm
@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="the patch reaches forked workers only")
def test_a_dying_worker_ends_the_sweep_with_one_error(lm_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("asr.lm.tune._score", lambda *args: os._exit(1))
    decoder = BeamSearchDecoder(TINY, beam_width=4, lm=NGramLM(lm_file))
    with pytest.raises(TuningError, match="worker process died"):
        sweep([log_probs_from(CLEAR)[0]], ["A B"], decoder, grid_points((0.0, 1.0), (0.0,)), jobs=2)


def test_parse_values_and_points() -> None:
    assert parse_values("0:2:0.5") == (0.0, 0.5, 1.0, 1.5, 2.0)
    assert parse_values("-1:0:0.3") == (-1.0, -0.7, -0.4, -0.1)
    assert parse_values("0.5,2") == (0.5, 2.0)
    for bad in ("1:0:1", "0:1:0", "a,b", "0:1"):
        with pytest.raises(ConfigError):
            parse_values(bad)
    assert len(grid_points((0.0, 1.0), (0.0, 1.0, 2.0))) == 6
    points = random_points((0.0, 2.0), (-1.0, 3.0), 20, seed=3)
    assert len(points) == 20 and points == random_points((0.0, 2.0), (-1.0, 3.0), 20, seed=3)
    assert all(0 <= a <= 2 and -1 <= b <= 3 for a, b in points)


def _tuned(alpha: float = 1.25, beta: float = -0.5) -> TunedWeights:
    return TunedWeights(alpha, beta, 24, 0.1, 0.05, "/data/dev.jsonl", 10, 81, Path())


def test_stored_weights_are_used_for_that_lm_only(tmp_path: Path, lm_file: Path) -> None:
    checkpoint = tmp_path / "exp" / "best.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    other_lm = write_arpa(tmp_path / "other.arpa", {"A": -0.5, "B": -0.5}, BIGRAMS)
    assert store_tuned(checkpoint, lm_file, _tuned()) == tmp_path / "exp" / "lm_tuning.json"

    config, note = decoding_config(checkpoint, lm=str(lm_file))
    assert (config.decoder, config.alpha, config.beta, config.beam_width) == ("beam", 1.25, -0.5, 24)
    assert "tuned" in note and "dev.jsonl" in note
    # Explicit options win, one by one.
    config, note = decoding_config(checkpoint, lm=str(lm_file), alpha=0.3, beam_width=4)
    assert (config.alpha, config.beta, config.beam_width) == (0.3, -0.5, 4)
    config, note = decoding_config(checkpoint, lm=str(lm_file), alpha=0.3, beta=0.0)
    assert (config.alpha, config.beta, note) == (0.3, 0.0, None)
    # Another LM file, even with the same content, has no tuned values.
    config, note = decoding_config(checkpoint, lm=str(other_lm))
    assert (config.alpha, config.beta, config.beam_width) == (0.5, 1.0, 16)
    assert "none tuned" in note


def test_stored_weights_follow_file_content(tmp_path: Path, lm_file: Path) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    store_tuned(checkpoint, lm_file, _tuned())
    # Same bytes, new modification time (a copy, a touch): still the same LM.
    os.utime(lm_file, ns=(1, 1))
    assert find_tuned(checkpoint, lm_file)[0].alpha == 1.25
    # A rebuilt LM or a retrained model: the entry no longer applies.
    write_arpa(lm_file, {"A": -0.5, "B": -0.5}, {"A A": -0.2, "A B": -0.6})
    assert find_tuned(checkpoint, lm_file) == (None, True)
    config, note = decoding_config(checkpoint, lm=str(lm_file))
    assert (config.alpha, config.beta) == (0.5, 1.0) and "changed" in note
    store_tuned(checkpoint, lm_file, _tuned(alpha=0.75))
    assert find_tuned(checkpoint, lm_file)[0].alpha == 0.75
    assert len(json.loads(tuning_file(checkpoint).read_text())["tunings"]) == 1  # replaced, not added
    checkpoint.write_bytes(b"new weights")
    assert find_tuned(checkpoint, lm_file) == (None, True)


def test_inconsistent_options_and_damaged_file(tmp_path: Path, lm_file: Path) -> None:
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights")
    assert decoding_config(checkpoint)[0].decoder == "greedy"
    assert isinstance(build_decoder(TINY, decoding_config(checkpoint)[0]), GreedyDecoder)
    assert decoding_config(checkpoint, beam_width=3)[0].decoder == "beam"
    # The library names its parameters, not the command line's flags.
    with pytest.raises(ConfigError, match="only to beam search, not to decoder 'greedy'"):
        decoding_config(checkpoint, decoder="greedy", lm=str(lm_file))
    with pytest.raises(ConfigError, match="no LM was given"):
        decoding_config(checkpoint, decoder="beam", alpha=1.0)
    with pytest.raises(ConfigError, match="beam width"):
        build_decoder(TINY, decoding_config(checkpoint, beam_width=0)[0])
    tuning_file(checkpoint).write_text("{not json")
    with pytest.raises(ConfigError, match="lm_tuning.json"):
        decoding_config(checkpoint, lm=str(lm_file))


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A checkpoint with random weights, and a two-utterance manifest of noise next to it."""
    config = ExperimentConfig(model=ModelConfig(hidden=8, layers=1, dropout=0.0))
    path = tmp_path / "exp" / "best.pt"
    path.parent.mkdir()
    save_checkpoint(path, AcousticModel(config.model), config, Vocabulary())
    rng = np.random.default_rng(0)
    utterances = []
    for i, text in enumerate(["A B", "B A"]):
        wav = tmp_path / f"u{i}.wav"
        soundfile.write(wav, 0.1 * rng.standard_normal(8000).astype(np.float32), 16000)
        utterances.append(Utterance(f"s-c-{i}", str(wav), 0.5, text, "s"))
    write_manifest(utterances, tmp_path / "dev.jsonl")
    return path


@needs_kenlm
def test_cli_tune_lm_then_evaluate_uses_the_stored_weights(tmp_path: Path, tiny_model: Path, lm_file: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    manifest = str(tmp_path / "dev.jsonl")
    assert main(["tune-lm", "--model", str(tiny_model), "--manifest", manifest, "--lm", str(lm_file),
                 "--alphas", "0,0.5", "--betas=-1,2", "--beam-width", "4", "--quiet", "--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["alpha", "beta", "WER", "%", "CER", "%"] and len(out) == 7
    assert out[-2].startswith("best: alpha=") and "lm_tuning.json" in out[-1]  # results first, then where stored
    stored, _ = find_tuned(tiny_model, lm_file)
    assert stored is not None and stored.beam_width == 4 and stored.utterances == 2
    assert main(["evaluate", "--model", str(tiny_model), "--manifest", manifest, "--lm", str(lm_file),
                 "--json", "--device", "cpu", "--out-dir", str(tmp_path / "eval")]) == 0
    captured = capsys.readouterr()
    assert f"alpha={stored.alpha:g} beta={stored.beta:g}" in captured.err
    assert json.loads(captured.out)["wer"] == pytest.approx(stored.wer)


@needs_kenlm
@pytest.mark.parametrize("problem", ["malformed", "missing", "mismatch"])
def test_cli_bad_lm_is_one_error_line(tmp_path: Path, tiny_model: Path, problem: str,
                                      capsys: pytest.CaptureFixture) -> None:
    lm = tmp_path / "lm.arpa"
    if problem == "malformed":
        lm.write_text("\\data\\\nngram 1=oops\n")
    elif problem == "mismatch":
        write_arpa(lm, {"1": -1.0, "2": -1.0, "A": -1.0})
    audio = str(tmp_path / "u0.wav")
    assert main(["transcribe", "--model", str(tiny_model), "--lm", str(lm), "--device", "cpu", audio]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr: error: ") and "lm.arpa" in err[0]


@pytest.mark.skipif(not _has_irstlm(), reason="IRSTLM is not installed")
def test_cli_lm_build(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths, as IRSTLM runs elsewhere
    Path("text.txt").write_text("THE CAT SAT\nTHE DOG SAT\nA CAT RAN\nTHE DOG RAN ON A MAT\n")
    out = Path("lm") / "lm.arpa"
    assert main(["lm", "build", "--text", "text.txt", "--order", "2", "--out", str(out),
                 "--smoothing", "witten-bell"]) == 0
    assert out.read_text().lstrip().startswith("\\data\\")
    assert "8 words" in capsys.readouterr().out
    assert main(["lm", "build", "--text", str(tmp_path / "none.txt"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.txt" in err[0]
