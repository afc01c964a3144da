"""Manifests and batching.

A manifest is JSON lines, one utterance a line, with NeMo's keys (``audio_filepath``,
``duration``, ``text``) plus ``id`` and ``speaker``. Any LibriSpeech-layout folder becomes
one (:func:`asr.corpora.librispeech.read_librispeech`).
A row may also carry ``speed``: the audio is then speed-perturbed when it is loaded (the
lhotse way, no copies on disk), and its ``duration`` is already that of the perturbed audio.
A row with ``offset`` (NeMo's key) is a span of its file: ``duration`` seconds from ``offset``
(a Kaldi segment, a Lhotse supervision inside a longer recording), read without cutting
the file; a row without one is the whole file.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soxr
import torch
from torch.utils.data import Dataset, Sampler

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.errors import UserError
from asr.io import atomic_write
from asr.text import Vocabulary, normalize_text
from asr.units import lexicon_table, target_units

SPEED_RANGE = (0.5, 2.0)  # speed perturbation factors allowed (Kaldi and lhotse use 0.9-1.1)


@dataclass(frozen=True)
class Utterance:
    """One manifest row."""

    id: str
    audio_filepath: str
    duration: float  # seconds, after speed perturbation
    text: str
    speaker: str
    speed: float = 1.0  # speed perturbation factor applied at load time; 1.0: the audio as it is
    # The phones spoken, where the corpus knows them ("D @ | k a t": spaces between phones, "|"
    # between words); phone models learn these rather than the lexicon's (asr/units.py).
    phones: str = ""
    # Where the utterance starts in its file (s); None: it is the whole file. A span lasts
    # ``duration x speed`` seconds of the file.
    offset: float | None = None

    @property
    def span_seconds(self) -> float | None:
        """Seconds of the file the utterance reads from ``offset``; None for a whole file."""
        if self.offset is None:
            return None
        # Durations are kept to 0.1 ms: a perturbed row's, divided by its speed, is rounded back.
        return self.duration if self.speed == 1.0 else round(self.duration * self.speed, 4)

    def to_json(self) -> str:
        row = asdict(self)
        if self.speed == 1.0:
            del row["speed"]  # unperturbed rows stay plain NeMo rows
        if not self.phones:
            del row["phones"]
        if self.offset is None:
            del row["offset"]
        text = json.dumps(row, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a file name that is not UTF-8: its bytes as JSON escapes
            text = json.dumps(row)
        return text


class ManifestError(UserError, ValueError):
    """A manifest that cannot be read; the message names the file and line."""


def write_manifest(utterances: Iterable[Utterance], path: str | Path) -> int:
    """Write JSON lines atomically; returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_write(path, what="manifest") as f:
        for utt in utterances:
            f.write(utt.to_json() + "\n")
            count += 1
    return count


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSON-lines manifest. Relative audio paths are taken relative to the manifest."""
    path = Path(path)
    if not path.is_file():  # a FIFO would be read forever
        raise ManifestError(f"{path}: {'not a regular file' if path.exists() else 'no such manifest file'}")
    rows = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                rows.append(manifest_row(json.loads(raw.decode("utf-8")), path.parent))
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
                raise ManifestError(f"{path}:{number}: not a manifest row ({type(err).__name__}: {err})") from None
    return rows


def manifest_row(row: dict, base: Path, normalize: bool = True) -> Utterance:
    """One parsed JSON row as an utterance; relative audio paths are taken relative to ``base``.

    Raises ``KeyError``, ``TypeError`` or ``ValueError`` for a row that is not a manifest row.
    ``normalize=False`` keeps the text as written (for checking it, see :mod:`asr.validate`).
    """
    for key, kinds in (("audio_filepath", str), ("text", str), ("id", str), ("speaker", str),
                       ("duration", (int, float)), ("speed", (int, float)), ("phones", str),
                       ("offset", (int, float))):
        # A null text would be scored as the word NONE; a string speed would be parsed.
        if key in row and (not isinstance(row[key], kinds) or isinstance(row[key], bool)):
            raise TypeError(f"{key} must be a {'string' if kinds is str else 'number'}, got {row[key]!r}")
    audio = Path(row["audio_filepath"])
    if not audio.is_absolute():
        audio = base / audio
    utt_id = str(row.get("id") or audio.stem)
    speed = float(row.get("speed", 1.0))
    if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:  # 1e-9 would resample a second into 500 years
        raise ValueError(f"speed must be from {SPEED_RANGE[0]:g} to {SPEED_RANGE[1]:g}, got {row['speed']!r}")
    duration = float(row["duration"])
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a number of seconds, got {row['duration']!r}")
    offset = row.get("offset")
    if offset is not None and not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"offset must be a number of seconds from 0, got {offset!r}")
    text = row.get("text", "")
    return Utterance(
        id=utt_id,
        audio_filepath=str(audio),
        duration=duration,
        text=normalize_text(text) if normalize else text,
        speaker=str(row.get("speaker", utt_id.split("-")[0])),
        speed=speed,
        phones=" ".join(row.get("phones", "").split()),
        offset=None if offset is None else float(offset),
    )


def speed_perturb(utterances: Iterable[Utterance], factors: Iterable[float]) -> list[Utterance]:
    """Each utterance once per speed factor (Ko et al., 2015; Kaldi's and lhotse's ``sp0.9-`` ids).

    Factor 1.0 keeps the utterance as it is; another factor gives a row whose id and speaker
    are prefixed ``sp<factor>-`` (a changed voice counts as another speaker, as in Kaldi)
    and whose duration is divided by the factor. The audio is changed only when loaded.
    """
    utterances, factors = list(utterances), list(factors)
    for factor in factors:
        if not SPEED_RANGE[0] <= factor <= SPEED_RANGE[1]:
            raise ValueError(f"speed factors must be from {SPEED_RANGE[0]:g} to {SPEED_RANGE[1]:g}, got {factor!r}")
    perturbed = []
    for factor in factors:
        for utt in utterances:
            if factor == 1.0:
                perturbed.append(utt)
                continue
            prefix = f"sp{factor:g}-"
            perturbed.append(replace(
                utt, id=prefix + utt.id, speaker=prefix + utt.speaker,
                duration=round(utt.duration / factor, 4), speed=utt.speed * factor,
            ))
    return perturbed


def change_speed(samples: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``samples`` (N,) ``factor`` times faster, tempo and pitch together (sox's ``speed``).

    Returns about N / factor samples: resampling to ``sample_rate / factor`` and playing the
    result at ``sample_rate`` is exactly a tape played at another speed.
    """
    if factor == 1.0:
        return samples
    return soxr.resample(samples, sample_rate, sample_rate / factor, quality="HQ").astype(np.float32, copy=False)


def load_utterance_audio(utt: Utterance) -> np.ndarray:
    """The utterance's samples (N,) at 16 kHz: its span of the file where the row has an
    offset, else the whole file; speed-perturbed when its row says so."""
    if utt.offset is None:
        return change_speed(load_audio(utt.audio_filepath), utt.speed)
    return change_speed(load_audio(utt.audio_filepath, offset=utt.offset, duration=utt.span_seconds), utt.speed)


class SpeechDataset(Dataset):
    """Utterances as (waveform (N,), token ids (L,), index, None) items; audio is read lazily.

    An utterance whose audio cannot be read (deleted, truncated, corrupt since the manifest
    was written) becomes ``(None, None, index, reason)``: :func:`collate` leaves it out of
    the batch and lists it in ``Batch.failed``, so one bad file never stops a run.
    """

    def __init__(self, utterances: list[Utterance], vocab: Vocabulary) -> None:
        self.utterances = utterances
        self.vocab = vocab
        self._lexicon = lexicon_table(vocab) if vocab.units == "phones" else None  # read once, not per item

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, torch.Tensor | None, int, str | None]:
        utt = self.utterances[index]
        try:
            wave = torch.from_numpy(load_utterance_audio(utt))
        except AudioError as err:
            return None, None, index, str(err)
        tokens = torch.tensor(self.vocab.encode(target_units(self.vocab, utt.text, utt.phones, self._lexicon) or ""),
                              dtype=torch.long)
        return wave, tokens, index, None


@dataclass
class Batch:
    """A padded batch. Tensors: waves (B, N), wave_lengths (B,), targets (B, L), target_lengths (B,).

    ``indices`` are the dataset indices of its B utterances; ``failed`` holds (index, error
    line) for those of the sampled batch whose audio could not be read. B may be 0.
    """

    waves: torch.Tensor
    wave_lengths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    indices: list[int]
    failed: list[tuple[int, str]] = field(default_factory=list)

    def pin_memory(self) -> "Batch":
        # DataLoader calls this when pin_memory=True, so host->GPU copies can be asynchronous.
        return Batch(
            self.waves.pin_memory(),
            self.wave_lengths.pin_memory(),
            self.targets.pin_memory(),
            self.target_lengths.pin_memory(),
            self.indices,
            self.failed,
        )

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            self.waves.to(device, non_blocking=True),
            self.wave_lengths.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.target_lengths.to(device, non_blocking=True),
            self.indices,
            self.failed,
        )

    @property
    def audio_seconds(self) -> float:
        return float(self.wave_lengths.sum()) / SAMPLE_RATE


def collate(items: list[tuple[torch.Tensor | None, torch.Tensor | None, int, str | None]]) -> Batch:
    good = [item for item in items if item[3] is None]
    failed = [(index, error) for _, _, index, error in items if error is not None]
    if not good:
        empty = torch.zeros(0, 0)
        return Batch(empty, torch.zeros(0, dtype=torch.long), empty.long(), torch.zeros(0, dtype=torch.long), [], failed)
    waves, tokens, indices, _ = zip(*good)
    return Batch(
        torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
        torch.tensor([len(w) for w in waves]),
        torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True),
        torch.tensor([len(t) for t in tokens]),
        list(indices),
        failed,
    )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances whose padded size stays within a budget.

    ``max_seconds`` bounds ``batch size x longest duration`` (the padded audio the model
    sees), so batches of short utterances are large and batches of long ones small.
    Utterances are shuffled, sorted by duration within windows of ``window`` utterances,
    cut into batches, and the batches shuffled: padding stays low while epochs differ.
    With ``sortagrad`` the first epoch runs its batches from shortest to longest (Amodei et
    al., 2016): short utterances give CTC easy alignments while the model is still blank.
    With ``num_replicas > 1`` (the distributed case) the batches are dealt to ranks in groups
    of similar length, the same seeded order on every rank; all ranks get as many batches.
    """

    def __init__(
        self,
        durations: list[float],
        max_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        window: int = 1000,
        num_replicas: int = 1,
        rank: int = 0,
        sortagrad: bool = False,
    ) -> None:
        if max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        self.durations = durations
        self.max_seconds = max_seconds
        self.shuffle = shuffle
        self.seed = seed
        self.window = window
        self.num_replicas = num_replicas
        self.rank = rank
        self.sortagrad = sortagrad
        self.epoch = 0
        self.start = 0  # batches of this epoch to pass over (resuming mid-epoch)
        # The batches of one epoch, built once: len() is asked every training step.
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = 0

    def start_at(self, batch: int) -> None:
        """Make this epoch's iteration begin at its ``batch``-th batch; ``len()`` still counts all."""
        self.start = batch

    def _batches(self) -> list[list[int]]:
        if self._cached is None or self._cached[0] != self.epoch:
            self._cached = (self.epoch, self._build_batches())
        return self._cached[1]

    def _build_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.durations)))
        if self.shuffle:
            rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.window):
            chunk = sorted(order[start : start + self.window], key=lambda i: self.durations[i])
            batch: list[int] = []
            longest = 0.0
            for i in chunk:
                longest_if_added = max(longest, self.durations[i])
                if batch and longest_if_added * (len(batch) + 1) > self.max_seconds:
                    batches.append(batch)
                    batch, longest_if_added = [], self.durations[i]
                batch.append(i)
                longest = longest_if_added
            if batch:
                batches.append(batch)
        if self.num_replicas > 1:
            return self._deal(batches, rng)
        if self.sortagrad and self.epoch == 0:
            batches.sort(key=self._longest)
        elif self.shuffle:
            rng.shuffle(batches)
        return batches

    def _longest(self, batch: list[int]) -> float:
        return max(self.durations[i] for i in batch)

    def _deal(self, batches: list[list[int]], rng: random.Random) -> list[list[int]]:
        """This rank's batches: one of each group of ``num_replicas`` batches of similar length.

        A data-parallel step waits for its slowest rank, so the batches that run together
        are neighbours in length; the groups, not the batches, are shuffled. The last group
        is filled up with repeats of the longest batch, so every rank takes as many steps.
        """
        replicas = self.num_replicas
        batches = sorted(batches, key=self._longest)
        batches += [batches[-1]] * (-len(batches) % replicas)
        groups = [batches[i : i + replicas] for i in range(0, len(batches), replicas)]
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            rng.shuffle(groups)
        return [group[self.rank] for group in groups]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches()[self.start :])

    def __len__(self) -> int:
        return len(self._batches())
