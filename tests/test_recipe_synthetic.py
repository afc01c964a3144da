"""compare_cells.sh runs recipes/synthetic/run.sh for its corpus, with the same EXP in the
environment: the two must not take each other's stages for done."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPARE_CELLS = REPO / "recipes" / "synthetic" / "compare_cells.sh"
# The smallest corpus `asr synth` makes (300 training speakers, 8 in each test set), with
# enough test audio for one speaker's joined utterances to reach test-long's 10 s.
SYNTH_ARGS = "--text generator --train 300 --dev 8 --test 32 --test-indomain 8 --jobs 2 --quiet"
SETS = ("dev", "test", "test-short", "test-long")


@pytest.mark.slow
def test_compare_cells_gets_past_stage_3_with_run_sh_on_the_same_exp(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    data, exp = tmp_path / "data", tmp_path / "x"
    env = {**os.environ, "DATA": str(data), "EXP": str(exp), "CONFIG": "recipes/synthetic/conf/tiny.toml",
           "SYNTH_ARGS": SYNTH_ARGS, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    args = ["bash", str(COMPARE_CELLS), "--stop-stage", "3"]
    first = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    # run.sh's stages 1-2 are marked under DATA, where compare_cells' own stage 2 is not theirs.
    assert "  === stage 2: prepare the test manifest" in out and "=== stage 2: short and long test sets" in out
    assert sorted(p.name for p in (data / ".done").iterdir()) == [
        "corpus", "length-sets", "manifest-dev", "manifest-test", "manifest-test-indomain", "manifest-train"]
    assert (data / ".done" / "corpus").read_text() == f"synth_args={SYNTH_ARGS}\n"
    assert not (exp / ".done").exists()
    for name in SETS:
        assert (exp / "lstm-bi" / f"decode-{name}" / "wer.json").is_file()
        assert (exp / "lstm-bi" / f"decode-{name}" / ".done").is_file()
    assert (exp / "lstm-bi" / ".done" / "train").read_text() == (
        f"config=recipes/synthetic/conf/tiny.toml\nsynth_args={SYNTH_ARGS}\n")
    assert not (exp / "gru-bi").exists()

    again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [line for line in again.stdout.splitlines() if "===" in line] == [
        "=== stage 1: corpus and manifests (recipes/synthetic/run.sh --stop-stage 2)"]
    assert "stage 3 (score lstm-bi on test-long): done before, skipped" in again.stdout
