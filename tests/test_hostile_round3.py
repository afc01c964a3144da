"""Hostile input, round three, outside the server (tests/test_serve.py holds the server's):
files a user hands asr that are not what they claim end in one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("kenlm")

REPO = Path(__file__).resolve().parent.parent
# A valid ARPA file but for one Latin-1 byte (CAFÉ), as an LM built from a Windows text might be.
LATIN1_ARPA = (b"\n\\data\\\nngram 1=4\nngram 2=1\n\n\\1-grams:\n-1.0\t<s>\t-0.3\n-1.0\t</s>\n-0.5\tHELLO\t-0.2\n"
               b"-0.5\tCAF\xc9\t-0.1\n\n\\2-grams:\n-0.2\tHELLO CAF\xc9\n\n\\end\\\n")


def _cli(*args, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, input=stdin,
                          timeout=120, cwd=REPO)


def _one_line(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def inputs(tmp_path: Path, random_checkpoint: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    audio = tmp_path / "a.wav"
    sf.write(audio, (0.05 * rng.standard_normal(16_000)).astype(np.float32), 16_000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio_filepath": str(audio), "duration": 1.0, "text": "HELLO",
                                    "speaker": "s"}) + "\n")
    lm = tmp_path / "latin1.arpa"
    lm.write_bytes(LATIN1_ARPA)
    return {"model": random_checkpoint, "audio": audio, "manifest": manifest, "lm": lm}


@pytest.mark.parametrize("command", ["transcribe", "evaluate", "listen", "tune-lm"])
def test_a_non_utf8_arpa_file_is_one_line_naming_the_line(inputs: dict[str, Path], tmp_path: Path,
                                                          command: str) -> None:
    model, lm = inputs["model"], inputs["lm"]
    args = {
        "transcribe": ["transcribe", "--model", model, inputs["audio"], "--output-dir", tmp_path / "out"],
        "evaluate": ["evaluate", "--model", model, "--manifest", inputs["manifest"], "--out-dir", tmp_path / "e"],
        "listen": ["listen", "--model", model, "--input", inputs["audio"]],
        "tune-lm": ["tune-lm", "--model", model, "--manifest", inputs["manifest"]],
    }[command]
    line = _one_line(_cli(*args, "--lm", lm, *(["--decoder", "beam"] if command != "tune-lm" else [])))
    assert f"{lm}:10: not UTF-8 text (byte 0xc9" in line, line


def test_an_arpa_header_with_a_count_that_is_not_a_number_is_one_line(inputs: dict[str, Path]) -> None:
    from asr.lm.load import LMError, arpa_counts

    bad = inputs["lm"].with_name("header.arpa")
    bad.write_text("\\data\\\nngram 1=²\n\n\\1-grams:\n-1.0\t<s>\n\n\\end\\\n")
    with pytest.raises(LMError, match="malformed ARPA header line"):
        arpa_counts(bad)


def test_a_damaged_corpus_record_is_refused_in_one_line(tmp_path: Path) -> None:
    from asr.corpora.synthetic.config import SynthConfig
    from asr.corpora.synthetic.corpus import SYNTH_FILE, CorpusMismatchError, synthesize_corpus

    (tmp_path / SYNTH_FILE).write_bytes(b"\xff\xfe not json")
    with pytest.raises(CorpusMismatchError, match="other settings"):
        synthesize_corpus(tmp_path, SynthConfig(), progress=False)
