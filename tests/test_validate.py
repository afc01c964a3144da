"""Manifest validation: every kind of problem is found, all of them are reported, the CLI exits 1."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asr import validate
from asr.cli import main
from asr.data import Utterance, speed_perturb, write_manifest
from asr.validate import Problem, validate_manifest


def _wav(path: Path, seconds: float = 1.0) -> Path:
    soundfile.write(path, np.zeros(int(16_000 * seconds), dtype=np.float32), 16_000)
    return path


@pytest.fixture
def good(tmp_path: Path) -> list[Utterance]:
    return [Utterance(f"s-c-{i}", str(_wav(tmp_path / f"{i}.wav")), 1.0, "A B'C", "s") for i in range(3)]


def _write(tmp_path: Path, rows: list[dict | str]) -> Path:
    path = tmp_path / "m.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _row(utt: Utterance, **changes: object) -> dict:
    return {**json.loads(utt.to_json()), **changes}


def test_a_clean_manifest_has_no_problems(tmp_path: Path, good: list[Utterance]) -> None:
    write_manifest(speed_perturb(good, (0.9, 1.0, 1.1)), tmp_path / "m.jsonl")
    assert validate_manifest(tmp_path / "m.jsonl") == (9, [])


@pytest.mark.parametrize("kind, change", [
    (validate.MISSING_AUDIO, {"audio_filepath": "nowhere.flac"}),
    (validate.EMPTY_TEXT, {"text": " "}),
    (validate.OUT_OF_VOCABULARY, {"text": "A café 42"}),
    (validate.DURATION_MISMATCH, {"duration": 2.0}),
    (validate.DURATION_MISMATCH, {"speed": 0.5}),
    (validate.BAD_ROW, {"duration": -1}),
    (validate.BAD_ROW, {"speed": 0}),
])
def test_each_kind_of_problem_is_found(tmp_path: Path, good: list[Utterance], kind: str, change: dict) -> None:
    path = _write(tmp_path, [_row(good[0]), _row(good[1], **change), _row(good[2])])
    rows, problems = validate_manifest(path)
    assert [(p.kind, p.line) for p in problems] == [(kind, 2)]
    assert rows == (3 if kind != validate.BAD_ROW else 2)
    assert str(problems[0]).startswith(f"{path}:2: ")


def test_duplicates_unreadable_audio_and_bad_rows(tmp_path: Path, good: list[Utterance]) -> None:
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio at all")
    path = _write(tmp_path, [
        _row(good[0]), _row(good[1], id=good[0].id), "{not json", json.dumps({"text": "A"}),
        _row(good[2], audio_filepath=str(broken)),
    ])
    _, problems = validate_manifest(path)
    assert [(p.line, p.kind) for p in problems] == [
        (2, validate.DUPLICATE_ID), (3, validate.BAD_ROW), (4, validate.BAD_ROW), (5, validate.UNREADABLE_AUDIO)]
    assert "also on line 1" in problems[0].detail and "audio_filepath" in problems[2].detail


def test_all_problems_are_reported_not_only_the_first(tmp_path: Path, good: list[Utterance]) -> None:
    path = _write(tmp_path, [_row(good[0], text=""), _row(good[1], text="lower case"), _row(good[2], audio_filepath="x.wav")])
    _, problems = validate_manifest(path)
    assert [p.kind for p in problems] == [validate.EMPTY_TEXT, validate.OUT_OF_VOCABULARY, validate.MISSING_AUDIO]
    assert problems[1].detail.startswith("'acelorsw' in 'lower case'; the vocabulary has only \"'ABC")


def test_empty_and_missing_manifests(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    assert [p.kind for p in validate_manifest(tmp_path / "empty.jsonl")[1]] == [validate.EMPTY_MANIFEST]
    assert [p.kind for p in validate_manifest(tmp_path / "none.jsonl")[1]] == [validate.MISSING_MANIFEST]


def test_ids_need_only_be_unique_within_a_manifest(tmp_path: Path, good: list[Utterance],
                                                   capsys: pytest.CaptureFixture) -> None:
    write_manifest(good, tmp_path / "a.jsonl")
    write_manifest(good, tmp_path / "b.jsonl")
    assert main(["validate", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]) == 0
    assert "ok: 6 rows in 2 manifest(s)" in capsys.readouterr().out


def test_cli_prints_every_problem_and_exits_1(tmp_path: Path, good: list[Utterance],
                                             capsys: pytest.CaptureFixture) -> None:
    path = _write(tmp_path, [_row(good[0], text=""), _row(good[1], id=good[0].id), _row(good[2], audio_filepath="x.wav")])
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4
    assert err[-1].startswith("3 problem(s) in 1 manifest(s), 3 rows: 1 empty text, 1 duplicate id, 1 missing audio")
    assert main(["validate", str(path), "--max-problems", "1"]) == 1
    assert capsys.readouterr().err.splitlines()[1] == "... and 2 more"


def test_problem_text() -> None:
    assert str(Problem("m.jsonl", 3, "u1", "empty text", "the transcript is empty")) == \
        "m.jsonl:3: u1: empty text: the transcript is empty"
    assert str(Problem("m.jsonl", 0, "", "empty manifest", "no rows")) == "m.jsonl: empty manifest: no rows"
