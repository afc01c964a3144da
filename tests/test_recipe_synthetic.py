"""compare_models.sh runs recipes/synthetic/run.sh for its corpus, with the same EXP in the
environment: the two must not take each other's stages for done; and its table."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
COMPARE_MODELS = REPO / "recipes" / "synthetic" / "compare_models.sh"
# The smallest corpus `asr synth` makes (300 training speakers, 8 in each test set), with
# enough test audio for one speaker's joined utterances to reach test-long's 10 s.
SYNTH_ARGS = "--text generator --train 300 --dev 8 --test 32 --test-indomain 8 --jobs 2 --quiet"
SETS = ("dev", "test-indomain", "test", "test-short", "test-long")


@pytest.mark.slow
def test_compare_models_gets_past_stage_3_with_run_sh_on_the_same_exp(tmp_path: Path) -> None:
    if not all(shutil.which(tool) for tool in ("espeak-ng", "festival", "flite")):
        pytest.skip("espeak-ng, festival or flite is not installed (the corpus's synthesizers)")
    data, exp = tmp_path / "data", tmp_path / "x"
    env = {**os.environ, "DATA": str(data), "EXP": str(exp), "CONFIG": "recipes/synthetic/conf/tiny.toml",
           "SYNTH_ARGS": SYNTH_ARGS, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    args = ["bash", str(COMPARE_MODELS), "--stop-stage", "3", "--budget", "updates", "--variants", "lstm-bi"]
    first = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    # run.sh's stages 1-2 are marked under DATA, where compare_models' own stage 2 is not theirs.
    assert "  === stage 2: prepare the test manifest" in out and "=== stage 2: short and long test sets" in out
    assert sorted(p.name for p in (data / ".done").iterdir()) == [
        "corpus", "length-sets", "manifest-dev", "manifest-test", "manifest-test-engine", "manifest-test-indomain",
        "manifest-train"]
    assert (data / ".done" / "corpus").read_text() == f"synth_args={SYNTH_ARGS}\n"
    assert not (exp / "updates" / ".done").exists()
    for name in SETS:
        assert (exp / "updates" / "lstm-bi" / f"decode-{name}" / "wer.json").is_file()
        assert (exp / "updates" / "lstm-bi" / f"decode-{name}" / ".done").is_file()
    assert (exp / "updates" / "lstm-bi" / ".done" / "train").read_text() == (
        f"config=recipes/synthetic/conf/tiny.toml\nsynth_args={SYNTH_ARGS}\n")
    assert sorted(p.name for p in exp.iterdir()) == ["updates"]
    assert sorted(p.name for p in (exp / "updates").iterdir()) == ["lstm-bi"]

    again = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [line for line in again.stdout.splitlines() if "===" in line] == [
        "=== stage 1: corpus and manifests (recipes/synthetic/run.sh --stop-stage 2)"]
    assert "stage 3 (score lstm-bi (budget updates) on test-long): done before, skipped" in again.stdout


def test_compare_models_refuses_an_unknown_variant_or_budget_in_one_line() -> None:
    for option in (["--variants", "lstm-bi lstm-tri"], ["--budget", "energy"]):
        run = subprocess.run(["bash", str(COMPARE_MODELS), *option], check=False, capture_output=True, text=True, timeout=30)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.startswith(f"{COMPARE_MODELS}: ") and option[1].split()[-1] in run.stderr.splitlines()[0]


def _models_table():
    spec = importlib.util.spec_from_file_location("models_table", REPO / "recipes/synthetic/local/models_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_table_reads_the_checkpoints_own_config_and_leaves_missing_files_blank(tmp_path: Path) -> None:
    budget = tmp_path / "time"
    causal, conformer = budget / "lstm-uni", budget / "conformer"
    for folder in (causal / "decode-dev", causal / "decode-test", conformer):
        folder.mkdir(parents=True)
    # An old checkpoint's config has no encoder: it is recurrent.
    torch.save({"config": {"model": {"cell": "lstm", "bidirectional": False}},
                "model": {"feat_mean": torch.zeros(80), "weight": torch.zeros(250_000)}}, causal / "best.pt")
    torch.save({"state": {"step": 123, "audio_seconds": 6000.0, "train_seconds": 120.0}}, causal / "last.pt")
    (causal / "decode-dev" / "wer.json").write_text(json.dumps({"wer": 0.25, "cer": 0.1}))
    (causal / "decode-test" / "wer.json").write_text(
        json.dumps({"wer": 0.5, "cer": None, "audio_seconds": 300.0, "decode_seconds": 2.0}))
    torch.save({"config": {"model": {"encoder": "conformer", "cell": "lstm", "bidirectional": True}},
                "model": {"weight": torch.zeros(1_100_000)}}, conformer / "best.pt")

    _models_table().main(str(budget), ["lstm-uni", "conformer"])
    lines = (budget / "models.md").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Budget: the same training-loop seconds")
    assert lines[2].startswith("| variant | encoder (cell) | streams |") and lines[3] == "|---" * 13 + "|"
    assert lines[4:] == [
        "| lstm-uni | rnn (lstm) | yes (causal) | 0.25 M | 123 | 2.0 | 50 | 150 | 25.0 / 10.0 | — / — | 50.0 / — | — | — |",
        "| conformer | conformer | no | 1.10 M | — | — | — | — | — / — | — / — | — / — | — | — |"]
