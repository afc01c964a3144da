"""Lhotse manifests in and out, read and written by the ``lhotse`` package itself (the
``lhotse`` extra: ``pip install -e ".[lhotse]"``).

In: a cut set, or a recording set and a supervision set (what ``lhotse prepare CORPUS``
writes for about 80 public corpora). Each supervision becomes one manifest row: the whole
file where it spans its recording, else an offset row, read at load time without cutting the
file. Out: ``recordings.jsonl.gz``, ``supervisions.jsonl.gz`` and ``cuts.jsonl.gz`` (a cut
per recording, with its supervisions), as icefall's and k2's recipes start from them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from asr.corpora.recordings import Skipped, measure_recordings, recording_utterance
from asr.data import Utterance
from asr.errors import UserError
from asr.io import atomic_write
from asr.text import normalize_text

OUTPUT_FILES = ("recordings.jsonl.gz", "supervisions.jsonl.gz", "cuts.jsonl.gz")


class LhotseError(UserError, ValueError):
    """Lhotse manifests that cannot be read as asked, or lhotse is not installed."""


def _lhotse():
    try:
        import lhotse
    except ImportError:
        raise LhotseError("Lhotse manifests are read and written by the lhotse package, which is not installed: "
                          'pip install -e ".[lhotse]"') from None
    return lhotse


def load_lhotse(paths: list[str | Path], skipped: list[Skipped]):
    """The cut set in ``paths`` (one cut-set file, or a recording set and a supervision set in
    either order), as lhotse loads them; :class:`LhotseError` for anything else. Supervisions
    of recordings the recording set lacks go to ``skipped``."""
    lhotse = _lhotse()
    loaded = []
    for path in paths:
        if not Path(path).is_file():
            raise LhotseError(f"{path}: no such Lhotse manifest")
        try:
            loaded.append(lhotse.load_manifest(path))
        except Exception as err:  # lhotse raises ValueError, KeyError, JSON and gzip errors as they come
            raise LhotseError(f"{path}: not a Lhotse manifest ({type(err).__name__}: {' '.join(str(err).split())[:160]})"
                              ) from None
    kinds = sorted(type(m).__name__ for m in loaded)
    if kinds == ["CutSet"]:
        return loaded[0]
    if kinds == ["RecordingSet", "SupervisionSet"]:
        recordings, supervisions = sorted(loaded, key=lambda m: type(m).__name__)
        known = {recording.id for recording in recordings}
        skipped.extend(Skipped(f"supervision {s.id}", f"its recording {s.recording_id} is not in the recording set; "
                                                      "left out") for s in supervisions if s.recording_id not in known)
        return lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    raise LhotseError(f"expected a cut set, or a recording set and a supervision set; got {', '.join(kinds)} "
                      f"({', '.join(map(str, paths))})")


def _audio_file(cut) -> str:
    """The one audio file a cut reads from; ValueError with why where there is none."""
    recording = getattr(cut, "recording", None)
    if recording is None:
        raise ValueError(f"a {type(cut).__name__} (padding, a mix, or features only) is no span of one audio file")
    if recording.transforms:
        raise ValueError("its recording has Lhotse transforms (speed, volume, reverb) that asr does not apply; "
                         "prepare the recording without them (asr prepare --speed-perturb perturbs at load time)")
    if len(recording.sources) != 1 or recording.sources[0].type != "file":
        kinds = "+".join(source.type for source in recording.sources)
        raise ValueError(f"its recording's audio is a {kinds} source; asr reads audio files only")
    if recording.num_channels != 1:
        raise ValueError(f"its recording has {recording.num_channels} channels and asr reads a mono mix: split "
                         "the channels into files first")
    return str(Path(recording.sources[0].source).resolve())  # a relative path is relative to here, as in lhotse


def _supervisions(cuts, skipped: list[Skipped]) -> Iterator[tuple[object, str, float, float]]:
    """(supervision, audio file, start, end) in its recording, of each supervision of the cuts."""
    for cut in cuts:
        try:
            path = _audio_file(cut)
        except ValueError as err:
            skipped.append(Skipped(f"cut {cut.id}", f"{err}; its supervisions are left out"))
            continue
        for supervision in cut.supervisions:
            start = cut.start + supervision.start
            yield supervision, path, start, start + supervision.duration


def read_lhotse(paths: list[str | Path], jobs: int | None = None) -> tuple[list[Utterance], list[Skipped]]:
    """Lhotse manifests' supervisions as utterances (sorted by id, transcripts normalised) and
    those left out, with why. Every audio file is decoded once, as ``asr prepare`` decodes a
    LibriSpeech folder's, so a supervision of a whole file gives the row ``asr prepare`` gives."""
    skipped: list[Skipped] = []
    cuts = load_lhotse(paths, skipped)
    found = list(_supervisions(cuts, skipped))
    seconds = measure_recordings((path for _, path, _, _ in found), jobs)
    for path, reason in seconds.items():
        if isinstance(reason, str):
            skipped.append(Skipped(path, f"{reason}; its supervisions are left out"))
    utterances, seen = [], set()
    for supervision, path, start, end in found:
        if isinstance(seconds[path], str):
            continue
        text = normalize_text(supervision.text or "")
        custom = supervision.custom or {}
        made = "duplicate supervision id" if supervision.id in seen else \
            "transcript is empty after normalisation" if not text else \
            recording_utterance(supervision.id, path, seconds[path], text,
                                supervision.speaker or supervision.id.split("-")[0], start, end,
                                " ".join(str(custom.get("phones", "")).split()))
        if isinstance(made, str):
            skipped.append(Skipped(f"supervision {supervision.id}", f"{made}; left out"))
        else:
            seen.add(supervision.id)
            utterances.append(made)
    return sorted(utterances, key=lambda u: u.id), skipped


def _recordings(utterances: list[Utterance], skipped: list[Skipped]) -> dict[str, object]:
    """Audio file -> lhotse Recording, named by its file name without extension (made unique)."""
    lhotse = _lhotse()
    recordings: dict[str, object] = {}
    taken: set[str] = set()
    for path in sorted({u.audio_filepath for u in utterances}):
        stem = name = Path(path).stem
        copy = 1
        while name in taken:
            copy += 1
            name = f"{stem}-{copy}"
        try:
            recordings[path] = lhotse.Recording.from_file(path, recording_id=name)
        except Exception as err:  # lhotse's audio backends raise their own errors
            skipped.append(Skipped(path, f"lhotse cannot read it ({type(err).__name__}: "
                                         f"{' '.join(str(err).split())[:160]}); its rows are left out"))
            continue
        taken.add(name)
    return recordings


def _write_jsonl_gz(path: Path, items: Iterable) -> None:
    with atomic_write(path, "wb", what="Lhotse manifest") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for item in items:
            f.write((json.dumps(item.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))


def write_lhotse(utterances: Iterable[Utterance], folder: str | Path) -> tuple[int, list[Skipped]]:
    """Write utterances as Lhotse manifests in ``folder`` (:data:`OUTPUT_FILES`), each file
    whole or not at all. Returns the supervisions written and the rows left out (speed-
    perturbed ones: lhotse perturbs cuts itself; files lhotse cannot read), with why."""
    lhotse = _lhotse()
    kept, skipped = [], []
    for utt in utterances:
        if utt.speed != 1.0:
            skipped.append(Skipped(utt.id, "speed-perturbed row: Lhotse perturbs cuts itself (CutSet.perturb_speed); "
                                           "left out"))
        else:
            kept.append(utt)
    recordings = _recordings(kept, skipped)
    supervisions = []
    for utt in kept:
        if (recording := recordings.get(utt.audio_filepath)) is None:
            continue
        supervisions.append(lhotse.SupervisionSegment(
            id=utt.id, recording_id=recording.id, start=utt.offset or 0.0,
            duration=recording.duration if utt.offset is None else utt.duration, channel=0, text=utt.text,
            speaker=utt.speaker, custom={"phones": utt.phones} if utt.phones else None,
        ))
    recording_set = lhotse.RecordingSet.from_recordings(sorted(recordings.values(), key=lambda r: r.id))
    supervision_set = lhotse.SupervisionSet.from_segments(supervisions)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl_gz(folder / "recordings.jsonl.gz", recording_set)
    _write_jsonl_gz(folder / "supervisions.jsonl.gz", supervision_set)
    _write_jsonl_gz(folder / "cuts.jsonl.gz", lhotse.CutSet.from_manifests(recordings=recording_set,
                                                                          supervisions=supervision_set))
    return len(supervisions), skipped
