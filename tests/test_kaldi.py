"""Kaldi data directories in and out: a directory with segments round-trips, and a malformed
one gets one line per problem (as utils/validate_data_dir.sh finds them) with its good rows kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora.kaldi import read_kaldi_dir, write_kaldi_dir
from asr.data import Utterance, read_manifest, speed_perturb, write_manifest


def _audio(path: Path, seconds: float, seed: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * 16_000))).astype(np.float32),
             16_000)
    return str(path.resolve())


@pytest.fixture
def rows(tmp_path: Path) -> list[Utterance]:
    """Segments of two long recordings whose files share a name, and a whole short file."""
    first, second = _audio(tmp_path / "a" / "talk.flac", 10.0, 1), _audio(tmp_path / "b" / "talk.flac", 6.0, 2)
    short = _audio(tmp_path / "short.wav", 2.0023125, 3)
    return [
        Utterance("spk1-talk-0001", first, 3.2, "HELLO THERE", "spk1", offset=1.5),
        Utterance("spk1-talk-0002", first, 2.25, "GENERAL KENOBI", "spk1", offset=6.0),
        Utterance("spk2-talk-0001", second, 4.5125, "IT'S OVER", "spk2", offset=0.0),
        Utterance("spk3-short", short, 2.0023, "A WHOLE FILE", "spk3"),
    ]


def test_a_directory_with_segments_round_trips(tmp_path: Path, rows: list[Utterance]) -> None:
    write_manifest(rows, tmp_path / "ours.jsonl")
    assert main(["prepare", "--manifest", str(tmp_path / "ours.jsonl"), "--to-kaldi", str(tmp_path / "kaldi")]) == 0
    kaldi = tmp_path / "kaldi"
    assert (kaldi / "segments").read_text().splitlines() == [
        "spk1-talk-0001 talk 1.5000 4.7000", "spk1-talk-0002 talk 6.0000 8.2500", "spk2-talk-0001 talk-2 0.0000 4.5125",
        "spk3-short short 0.0000 2.0023"]
    assert (kaldi / "spk2utt").read_text() == "spk1 spk1-talk-0001 spk1-talk-0002\nspk2 spk2-talk-0001\nspk3 spk3-short\n"
    assert main(["prepare", "--kaldi", str(kaldi), "--out", str(tmp_path / "back.jsonl")]) == 0
    assert (tmp_path / "back.jsonl").read_text() == (tmp_path / "ours.jsonl").read_text()
    assert read_manifest(tmp_path / "back.jsonl") == rows  # the whole file is a plain row again


def test_whole_files_need_no_segments_and_perturbed_rows_stay_out(tmp_path: Path, rows: list[Utterance]) -> None:
    whole = [rows[-1], Utterance("spk4-x", _audio(tmp_path / "x.wav", 1.0), 1.0, "X", "spk4")]
    (tmp_path / "kaldi").mkdir()
    (tmp_path / "kaldi" / "segments").write_text("stale 1 0 1\n")
    count, skipped = write_kaldi_dir(speed_perturb(whole, (1.0, 1.1)) + [Utterance("a b", whole[1].audio_filepath,
                                                                                    1.0, "X", "s")], tmp_path / "kaldi")
    assert count == 2 and len(skipped) == 3 and not (tmp_path / "kaldi" / "segments").exists()
    assert "speed-perturbed" in skipped[0].reason and "white space" in skipped[2].reason
    assert read_kaldi_dir(tmp_path / "kaldi") == (whole, [])


def test_a_malformed_directory_gets_one_line_per_problem_and_keeps_its_good_rows(
        tmp_path: Path, rows: list[Utterance], capsys) -> None:
    kaldi = tmp_path / "kaldi"
    write_kaldi_dir(rows, kaldi)
    (kaldi / "text").write_text("spk1-talk-0001 HELLO THERE\nspk1-talk-0001 AGAIN\n"  # a duplicate id
                                "spk3-short A WHOLE FILE\n")  # spk1-talk-0002 and spk2-talk-0001 have no text
    (kaldi / "utt2spk").write_text("spk1-talk-0002 spk1\nspk1-talk-0001 spk1\nspk2-talk-0001 spk2\nspk3-short spk3\n")
    segments = (kaldi / "segments").read_text().replace("spk3-short short 0.0000 2.0023", "spk3-short short 0.5 9.0")
    (kaldi / "segments").write_text(segments)  # ends 7 s past its file
    (kaldi / "spk2utt").write_text("spk1 spk1-talk-0001 spk1-talk-0002\nspk2 spk2-talk-0001\n")  # lacks spk3
    code = main(["prepare", "--kaldi", str(kaldi), "--out", str(tmp_path / "m.jsonl")])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 1 and len(lines) == 6, err
    assert f"asr: {kaldi / 'text'}:2: duplicate id spk1-talk-0001 (first on line 1); this line is left out" in lines
    assert any(line.startswith(f"asr: {kaldi / 'utt2spk'}: not sorted: line 2 (spk1-talk-0001) comes after "
                               "spk1-talk-0002; its rows are kept") for line in lines)
    assert f"asr: {kaldi / 'utt2spk'}:1: utterance spk1-talk-0002 has no line in text; left out" in lines
    assert f"asr: {kaldi / 'utt2spk'}:3: utterance spk2-talk-0001 has no line in text; left out" in lines
    assert any(line.startswith(f"asr: {kaldi / 'segments'}:4: utterance spk3-short: segment 0.5-9.0 s of ")
               and "lies past the end of its audio (2.002 s); left out" in line for line in lines)
    assert any("spk2utt: does not match utt2spk" in line for line in lines)
    assert read_manifest(tmp_path / "m.jsonl") == rows[:1]  # the one row no problem touched
    assert "wrote 1 utterances" in out


def test_commands_run_only_when_asked(tmp_path: Path, rows: list[Utterance], capsys) -> None:
    kaldi = tmp_path / "kaldi"
    write_kaldi_dir(rows[-1:], kaldi)
    source = rows[-1].audio_filepath
    (kaldi / "wav.scp").write_text(f"spk3-short cat '{source}' |\n")
    assert main(["prepare", "--kaldi", str(kaldi), "--out", str(tmp_path / "m.jsonl")]) == 1
    assert "is a command piped into '|', which runs a shell: give --kaldi-commands DIR" in capsys.readouterr().err
    assert main(["prepare", "--kaldi", str(kaldi), "--out", str(tmp_path / "m.jsonl"),
                 "--kaldi-commands", str(tmp_path / "piped")]) == 0
    (row,) = read_manifest(tmp_path / "m.jsonl")
    assert row.audio_filepath == str(tmp_path / "piped" / "spk3-short.wav") and row.duration == rows[-1].duration
    (kaldi / "wav.scp").write_text("spk3-short false |\n")
    assert main(["prepare", "--kaldi", str(kaldi), "--out", str(tmp_path / "m.jsonl"),
                 "--kaldi-commands", str(tmp_path / "piped")]) == 1
    assert "recording spk3-short: command failed (exit 1" in capsys.readouterr().err


def test_not_a_kaldi_directory_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "text").write_text("a A\n")
    assert main(["prepare", "--kaldi", str(tmp_path / "d"), "--out", str(tmp_path / "m.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err == f"asr: error: {tmp_path / 'd'}: no wav.scp or utt2spk (a Kaldi data directory holds wav.scp, " \
                  "text and utt2spk, and segments where utterances are parts of recordings)\n"
    shutil.rmtree(tmp_path / "d")
    assert main(["prepare", "--kaldi", str(tmp_path / "d"), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()


def test_evaluate_reads_the_segments_of_a_kaldi_directory(tmp_path: Path, rows: list[Utterance],
                                                         random_checkpoint: Path, capsys) -> None:
    write_kaldi_dir(rows, tmp_path / "kaldi")
    assert main(["prepare", "--kaldi", str(tmp_path / "kaldi"), "--out", str(tmp_path / "m.jsonl")]) == 0
    assert main(["evaluate", "--model", str(random_checkpoint), "--manifest", str(tmp_path / "m.jsonl"),
                 "--device", "cpu", "--json", "--out-dir", str(tmp_path / "eval")]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["utterances"] == 4 and summary["audio_seconds"] == pytest.approx(sum(r.duration for r in rows), abs=1e-3)
