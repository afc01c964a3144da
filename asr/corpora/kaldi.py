"""Kaldi data directories, the way Kaldi's and ESPnet's recipes keep a corpus, in and out.

A directory holds ``wav.scp`` (recording id -> audio file, or a shell command whose output is
the audio: ``sph2pipe -f wav a.sph |``), ``text`` (utterance id -> transcript), ``utt2spk``
(utterance id -> speaker), ``spk2utt`` (its inverse) and, where utterances are parts of
longer recordings, ``segments`` (utterance id -> recording id, start and end in seconds; an
end of -1 is the recording's end). Without ``segments`` each utterance is the recording of
its own id. Paths are taken relative to the working directory, as Kaldi takes them.

:func:`read_kaldi_dir` checks what Kaldi's ``utils/validate_data_dir.sh`` checks (each file
sorted, no id twice, the same utterances in text and utt2spk, spk2utt the inverse of utt2spk,
segments within their recordings), reports each problem in one line and keeps every row no
problem touches. A piped command runs a shell, so commands run only where the caller gives a
folder for their audio.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from asr.corpora.recordings import Skipped, measure_recordings, recording_utterance
from asr.data import Utterance
from asr.errors import UserError
from asr.io import atomic_write, write_text_atomic
from asr.text import normalize_text

REQUIRED_FILES = ("wav.scp", "text", "utt2spk")
COMMAND_TIMEOUT_SECONDS = 600.0  # one wav.scp command; sph2pipe or sox take well under a second a file
_ARCHIVE_OFFSET = re.compile(r".+:\d+$")  # Kaldi's extended filename "feats.ark:1234": a place in an archive

Table = dict[str, tuple[int, str]]  # id -> (line number, the rest of the line)


class KaldiError(UserError, ValueError):
    """A folder that is not a Kaldi data directory at all; the message names what is missing."""


def _read_table(path: Path, problems: list[Skipped]) -> Table:
    """A Kaldi table file: id -> (line, value). A line that is not UTF-8 and a second line of
    an id are problems and left out; a file out of order is one problem, its rows kept."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as err:
        raise KaldiError(f"{path}: cannot read ({err.strerror or err})") from None
    rows: Table = {}
    last, disorder = None, None
    for number, raw in enumerate(lines, 1):
        try:
            fields = raw.decode("utf-8").split(maxsplit=1)
        except UnicodeDecodeError as err:
            problems.append(Skipped(f"{path}:{number}", f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                                                        f"{err.start + 1}); line left out"))
            continue
        if not fields:
            continue
        key = fields[0]
        if key in rows:
            problems.append(Skipped(f"{path}:{number}", f"duplicate id {key} (first on line {rows[key][0]}); "
                                                        "this line is left out"))
            continue
        if disorder is None and last is not None and key < last:
            disorder = (number, key, last)
        rows[key] = (number, fields[1].strip() if len(fields) > 1 else "")
        last = key
    if disorder is not None:
        number, key, previous = disorder
        problems.append(Skipped(str(path), f"not sorted: line {number} ({key}) comes after {previous}; its rows are "
                                           f"kept, but Kaldi needs it sorted (LC_ALL=C sort {path.name} -o {path.name})"))
    return rows


def _check_spk2utt(folder: Path, utt2spk: Table, problems: list[Skipped]) -> None:
    """spk2utt, where there is one, must be utt2spk inverted (rows come from utt2spk either way)."""
    if not (folder / "spk2utt").exists():
        return
    spk2utt = _read_table(folder / "spk2utt", problems)
    inverse: dict[str, list[str]] = {}
    for utt, (_, speaker) in utt2spk.items():
        inverse.setdefault(speaker, []).append(utt)
    for speaker in sorted(set(spk2utt) | set(inverse)):
        if sorted(spk2utt.get(speaker, (0, ""))[1].split()) != sorted(inverse.get(speaker, [])):
            problems.append(Skipped(str(folder / "spk2utt"), f"does not match utt2spk (speaker {speaker}); utt2spk is "
                                                             "read, but rebuild it: utils/utt2spk_to_spk2utt.pl utt2spk > spk2utt"))
            return


def _run_command(recording: str, command: str, commands_dir: Path) -> str:
    """Run a wav.scp command (a shell pipeline ending in ``|``) and keep its audio in
    ``commands_dir/RECORDING.wav``; the path, or raise ValueError with why not."""
    if "/" in recording or recording.startswith("."):
        raise ValueError(f"recording id {recording!r} cannot name a file")
    try:
        run = subprocess.run(command[:-1], shell=True, capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise ValueError(f"command did not finish in {COMMAND_TIMEOUT_SECONDS:g} s") from None
    if run.returncode != 0 or not run.stdout:
        said = " ".join(run.stderr.decode("utf-8", "replace").split())[-160:] or "no audio on its output"
        raise ValueError(f"command failed (exit {run.returncode}: {said})")
    path = commands_dir / f"{recording}.wav"
    commands_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb", what="audio of a wav.scp command") as f:
        f.write(run.stdout)
    return str(path.resolve())


def _recording_files(folder: Path, wav_scp: Table, commands_dir: Path | None, problems: list[Skipped]) -> dict[str, str]:
    """Recording id -> audio file: wav.scp's paths, and the audio of its commands where they may run."""
    files = {}
    for recording, (number, value) in wav_scp.items():
        where = f"{folder / 'wav.scp'}:{number}"
        if value.endswith("|"):
            if commands_dir is None:
                problems.append(Skipped(where, f"recording {recording} is a command piped into '|', which runs a "
                                               "shell: give --kaldi-commands DIR to run it; its utterances are left out"))
                continue
            try:
                files[recording] = _run_command(recording, value, commands_dir)
            except ValueError as err:
                problems.append(Skipped(where, f"recording {recording}: {err}; its utterances are left out"))
        elif value.startswith("~"):  # Kaldi refuses it too: fopen does not expand ~
            problems.append(Skipped(where, f"recording {recording}: write {value!r} without ~ (no program expands it "
                                           "in wav.scp); its utterances are left out"))
        elif not value or value == "-" or (_ARCHIVE_OFFSET.match(value) and not Path(value).exists()):
            problems.append(Skipped(where, f"recording {recording}: {value or 'nothing'!r} is not an audio file "
                                           "(archives and standard input are not read); its utterances are left out"))
        else:
            files[recording] = str(Path(value).resolve())
    return files


def _segment(value: str) -> tuple[str, float, float | None]:
    """'RECORDING START END' -> (recording, start, end or None for -1); ValueError if not one."""
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"expected 'UTTERANCE RECORDING START END', got {len(fields) + 1} fields")
    start, end = float(fields[1]), float(fields[2])
    if not start >= 0 or not (end == -1 or end > start):
        raise ValueError(f"start {fields[1]} and end {fields[2]} are not a span (0 <= start < end, or end -1)")
    return fields[0], start, None if end == -1 else end


def _spans(folder: Path, tables: dict[str, Table], audio: dict[str, str],
           problems: list[Skipped]) -> dict[str, tuple[str, float, float | None, str]]:
    """Utterance id -> (audio file, start, end or None, where it is defined) for each
    utterance that text, utt2spk and (where there is one) segments agree on."""
    text, utt2spk, segments = tables["text"], tables["utt2spk"], tables.get("segments")
    for utt in sorted(set(utt2spk) - set(text)):
        problems.append(Skipped(f"{folder / 'utt2spk'}:{utt2spk[utt][0]}", f"utterance {utt} has no line in text; left out"))
    for utt in sorted(set(text) - set(utt2spk)):
        problems.append(Skipped(f"{folder / 'text'}:{text[utt][0]}", f"utterance {utt} has no line in utt2spk; left out"))
    for utt in sorted(set(segments or ()) - set(utt2spk)):
        problems.append(Skipped(f"{folder / 'segments'}:{segments[utt][0]}", f"utterance {utt} is not in utt2spk; left out"))
    spans = {}
    for utt in sorted(set(text) & set(utt2spk)):
        if len(utt2spk[utt][1].split()) != 1:
            problems.append(Skipped(f"{folder / 'utt2spk'}:{utt2spk[utt][0]}", "expected 'UTTERANCE SPEAKER'; left out"))
            continue
        if segments is None:
            where, (recording, start, end) = f"{folder / 'text'}:{text[utt][0]}", (utt, 0.0, None)
        elif utt not in segments:
            problems.append(Skipped(f"{folder / 'text'}:{text[utt][0]}", f"utterance {utt} has no line in segments; left out"))
            continue
        else:
            where = f"{folder / 'segments'}:{segments[utt][0]}"
            try:
                recording, start, end = _segment(segments[utt][1])
            except ValueError as err:
                problems.append(Skipped(where, f"utterance {utt}: {err}; left out"))
                continue
        if recording in audio:
            spans[utt] = (audio[recording], start, end, where)
        elif recording not in tables["wav.scp"]:  # a bad wav.scp line has been reported already
            problems.append(Skipped(where, f"utterance {utt}: recording {recording} has no line in wav.scp; left out"))
    return spans


def read_kaldi_dir(folder: str | Path, *, commands_dir: str | Path | None = None,
                   jobs: int | None = None) -> tuple[list[Utterance], list[Skipped]]:
    """A Kaldi data directory's utterances (sorted by id, transcripts normalised) and every
    problem found, each one line; rows no problem touches are kept.

    Every recording is decoded once, to check it and to check its segments end within it.
    ``commands_dir``: run wav.scp's piped commands and keep their audio there (None: such
    recordings are left out). Raises :class:`KaldiError` for a folder without wav.scp, text
    or utt2spk.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KaldiError(f"{folder}: no such directory (expected a Kaldi data directory: wav.scp, text, utt2spk)")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise KaldiError(f"{folder}: no {' or '.join(missing)} (a Kaldi data directory holds wav.scp, text and "
                         "utt2spk, and segments where utterances are parts of recordings)")
    problems: list[Skipped] = []
    names = REQUIRED_FILES + (("segments",) if (folder / "segments").exists() else ())
    tables = {name: _read_table(folder / name, problems) for name in names}
    _check_spk2utt(folder, tables["utt2spk"], problems)
    audio = _recording_files(folder, tables["wav.scp"], None if commands_dir is None else Path(commands_dir), problems)
    spans = _spans(folder, tables, audio, problems)
    seconds = measure_recordings((path for path, _, _, _ in spans.values()), jobs)
    for path, found in seconds.items():
        if isinstance(found, str):
            problems.append(Skipped(path, f"{found}; its utterances are left out"))
    utterances = []
    for utt, (path, start, end, where) in spans.items():
        text = normalize_text(tables["text"][utt][1])
        if isinstance(found := seconds[path], str):
            continue
        made = recording_utterance(utt, path, found, text, tables["utt2spk"][utt][1], start, end) if text else \
            "transcript is empty after normalisation"
        if isinstance(made, str):
            problems.append(Skipped(where, f"utterance {utt}: {made}; left out"))
        else:
            utterances.append(made)
    return utterances, problems


def _recording_ids(utterances: list[Utterance], segments: bool) -> dict[str, str]:
    """Audio file -> recording id: its file name without extension (made unique) where
    utterances are segments, else (each utterance a recording) nothing is shared."""
    if not segments:
        return {}
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for path in sorted({u.audio_filepath for u in utterances}):
        stem = name = Path(path).stem.replace(" ", "_")
        copy = 1
        while name in taken:
            copy += 1
            name = f"{stem}-{copy}"
        ids[path] = name
        taken.add(name)
    return ids


def _unwritable(utt: Utterance, seen: set[str]) -> str | None:
    if utt.speed != 1.0:
        return "speed-perturbed row: Kaldi perturbs with its own scripts (utils/data/perturb_data_dir_speed_3way.sh)"
    if any(len(value.split()) != 1 for value in (utt.id, utt.speaker)):
        return "an id or speaker that is empty or holds white space cannot be a Kaldi id"
    if "\n" in utt.audio_filepath or utt.audio_filepath.rstrip().endswith("|"):
        return "a path that holds a line break or ends in '|' cannot be written to wav.scp"
    if utt.id in seen:
        return "duplicate id"
    seen.add(utt.id)
    return None


def write_kaldi_dir(utterances: Iterable[Utterance], folder: str | Path) -> tuple[int, list[Skipped]]:
    """Write utterances as a Kaldi data directory (files sorted as Kaldi sorts them, written
    whole or not at all); ``segments`` where any row is a span of its file. Returns the rows
    written and those that cannot be (speed-perturbed rows, ids with spaces), with why."""
    folder = Path(folder)
    kept, skipped, seen = [], [], set()
    for utt in utterances:
        reason = _unwritable(utt, seen)
        if reason is None:
            kept.append(utt)
        else:
            skipped.append(Skipped(utt.id, f"{reason}; left out of {folder}"))
    kept.sort(key=lambda u: u.id)
    with_segments = any(u.offset is not None for u in kept)
    recordings = _recording_ids(kept, with_segments)
    speakers: dict[str, list[str]] = {}
    for utt in kept:
        speakers.setdefault(utt.speaker, []).append(utt.id)
    files = {
        "wav.scp": sorted({f"{recordings.get(u.audio_filepath, u.id)} {u.audio_filepath}" for u in kept}),
        "text": [f"{u.id} {u.text}" for u in kept],
        "utt2spk": [f"{u.id} {u.speaker}" for u in kept],
        "spk2utt": [f"{speaker} {' '.join(ids)}" for speaker, ids in sorted(speakers.items())],
    }
    if with_segments:
        files["segments"] = [f"{u.id} {recordings[u.audio_filepath]} {u.offset or 0.0:.4f} "
                             f"{(u.offset or 0.0) + u.duration:.4f}" for u in kept]
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        write_text_atomic(folder / name, "".join(line + "\n" for line in lines), what=f"Kaldi {name}")
    if not with_segments:
        (folder / "segments").unlink(missing_ok=True)  # an earlier run's would cut these recordings
    return len(kept), skipped
