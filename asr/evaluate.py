"""Decoding a manifest with a recognizer (PyTorch or ONNX) and scoring it: WER/CER, per-utterance and sclite files.

Under torchrun each process decodes a share of the batches one process would decode
(:func:`shard_batches`), so every utterance is decoded in the same batch, padded alike,
whatever the number of processes; rank 0 merges the shares (:func:`merge_decoded`) and
scores them as one process would, to the last digit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from asr.data import BucketBatchSampler, SpeechDataset, Utterance, collate
from asr.hypothesis import Decoder, Hypothesis
from asr.inference import Recognizer
from asr.io import write_text_atomic
from asr.metrics import ErrorCounts, corpus_errors
from asr.progress import progress as progress_bar
from asr.sharding import balanced_shares


@dataclass
class Decoded:
    """What :func:`decode_utterances` returns, in input order."""

    hypotheses: list[Hypothesis | None]  # None where the audio could not be read
    failures: dict[int, str] = field(default_factory=dict)  # input index -> one error line
    audio_seconds: float = 0.0  # of the utterances decoded
    seconds: float = 0.0  # wall time: reading audio, features, the model and the decoder

    @property
    def texts(self) -> list[str]:
        """Hypothesis texts of the utterances that were decoded."""
        return [h.text for h in self.hypotheses if h is not None]

    def decoded(self, utterances: list[Utterance]) -> list[Utterance]:
        """The utterances that were decoded (``utterances`` is the list that was decoded)."""
        return [u for u, h in zip(utterances, self.hypotheses) if h is not None]

    def skipped(self, utterances: list[Utterance]) -> dict[str, str]:
        """Utterance id -> error line for those that could not be decoded."""
        return {utterances[i].id: error for i, error in self.failures.items()}


@dataclass
class EvalResult:
    words: ErrorCounts
    chars: ErrorCounts
    ids: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    hypotheses: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # utterance id -> why it was not decoded
    audio_seconds: float = 0.0  # audio decoded, and the wall time it took (0: not timed)
    decode_seconds: float = 0.0

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate

    def summary(self) -> dict:
        # With no reference word, any inserted word makes the rate infinite, which JSON cannot
        # hold (json.dumps would write the non-JSON "Infinity"): such a rate is null.
        return {
            "wer": self.wer if math.isfinite(self.wer) else None,
            "cer": self.cer if math.isfinite(self.cer) else None,
            "words": self.words.reference_length,
            "substitutions": self.words.substitutions,
            "deletions": self.words.deletions,
            "insertions": self.words.insertions,
            "chars": self.chars.reference_length,
            "char_substitutions": self.chars.substitutions,
            "char_deletions": self.chars.deletions,
            "char_insertions": self.chars.insertions,
            "utterances": len(self.ids),
            "skipped": len(self.skipped),
            "audio_seconds": round(self.audio_seconds, 3),
            "decode_seconds": round(self.decode_seconds, 3),
        }


@dataclass
class LogProbBatch:
    """One forward pass of :func:`batched_log_probs`."""

    indices: list[int]  # input index of each row
    log_probs: torch.Tensor  # (B, T', V), rows past ``lengths`` are padding
    lengths: torch.Tensor  # (B,)


def batched_log_probs(
    recognizer: Recognizer,
    utterances: list[Utterance],
    failures: dict[int, str],
    *,
    max_batch_seconds: float = 200.0,
    num_workers: int = 0,
    progress: bool = False,
    batches: list[list[int]] | None = None,
) -> Iterator[LogProbBatch]:
    """The recognizer's log-probabilities for ``utterances``, a batch of similar lengths at a time.

    An utterance whose audio cannot be read is left out of every batch, and ``failures``
    gets its input index -> one error line. ``batches`` (input indices) decodes those
    batches only (a rank's share); None: all of :func:`length_batches`.
    """
    # Dataset encodes references; decoding must not depend on them being encodable.
    dataset = SpeechDataset([dataclasses.replace(u, text="", phones="") for u in utterances], recognizer.vocab)
    sampler = length_batches(utterances, max_batch_seconds) if batches is None else batches
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
    for batch in progress_bar(loader, desc="decode", unit="batch", disable=not progress, leave=False):
        failures.update(batch.failed)
        if batch.indices:
            yield LogProbBatch(batch.indices, *recognizer.log_probs(batch.waves, batch.wave_lengths))


def decode_utterances(
    recognizer: Recognizer,
    utterances: list[Utterance],
    decoder: Decoder,
    *,
    max_batch_seconds: float = 200.0,
    num_workers: int = 0,
    progress: bool = False,
    batches: list[list[int]] | None = None,
) -> Decoded:
    """Run ``recognizer`` and ``decoder`` over utterances; hypotheses come back in input order.

    An utterance whose audio cannot be read gets no hypothesis and an entry in ``failures``;
    the others are decoded all the same. ``batches``: only those (a rank's share, from
    :func:`shard_batches`); the others get no hypothesis.
    """
    started = time.perf_counter()
    result = Decoded([None] * len(utterances))
    for batch in batched_log_probs(recognizer, utterances, result.failures, max_batch_seconds=max_batch_seconds,
                                   num_workers=num_workers, progress=progress, batches=batches):
        for index, hyp in zip(batch.indices, decoder(batch.log_probs, batch.lengths)):
            result.hypotheses[index] = hyp
    result.failures = dict(sorted(result.failures.items()))
    result.seconds = time.perf_counter() - started
    result.audio_seconds = sum(u.duration for u, h in zip(utterances, result.hypotheses) if h is not None)
    return result


def length_batches(utterances: list[Utterance], max_batch_seconds: float) -> list[list[int]]:
    """The batches (input indices) one process decodes: utterances of similar length
    together, at most ``max_batch_seconds`` of padded audio each."""
    return list(BucketBatchSampler([u.duration for u in utterances], max_batch_seconds, shuffle=False))


def shard_batches(utterances: list[Utterance], rank: int, world_size: int,
                  max_batch_seconds: float = 200.0) -> list[list[int]]:
    """Rank ``rank``'s share of :func:`length_batches`: the batches are dealt whole, by their
    padded seconds, so that each utterance is decoded as one process decodes it."""
    batches = length_batches(utterances, max_batch_seconds)
    costs = [len(b) * max(utterances[i].duration for i in b) for b in batches]
    return [batches[i] for i in balanced_shares(costs, world_size)[rank]]


def merge_decoded(parts: list[Decoded], utterances: list[Utterance]) -> Decoded:
    """The ranks' :class:`Decoded` of shares of ``utterances``, as one: each utterance's
    hypothesis from the rank that decoded it, every failure, the audio of all, and the
    longest rank's time."""
    merged = Decoded([None] * len(utterances))
    for part in parts:
        for index, hyp in enumerate(part.hypotheses):
            if hyp is not None:
                merged.hypotheses[index] = hyp
        merged.failures.update(part.failures)
    merged.failures = dict(sorted(merged.failures.items()))
    merged.audio_seconds = sum(u.duration for u, h in zip(utterances, merged.hypotheses) if h is not None)
    merged.seconds = max(part.seconds for part in parts)
    return merged


def score(utterances: list[Utterance], hypotheses: list[str], skipped: dict[str, str] | None = None, *,
          audio_seconds: float = 0.0, decode_seconds: float = 0.0) -> EvalResult:
    """Score decoded utterances; ``skipped`` (id -> reason) lists those that could not be decoded;
    the seconds, if given, are the audio decoded and the time that took (:class:`Decoded`'s)."""
    words, chars = corpus_errors([(u.text, h) for u, h in zip(utterances, hypotheses)])
    return EvalResult(words, chars, [u.id for u in utterances], [u.text for u in utterances], list(hypotheses),
                      dict(skipped or {}), audio_seconds, decode_seconds)


def write_reports(result: EvalResult, out_dir: str | Path, speakers: list[str] | None = None) -> list[Path]:
    """Per-utterance text files and NIST sclite ``trn`` files (``TEXT (speaker-uttid)``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    speakers = speakers or [i.split("-")[0] for i in result.ids]
    files = {
        "ref.txt": [f"{i} {r}" for i, r in zip(result.ids, result.references)],
        "hyp.txt": [f"{i} {h}" for i, h in zip(result.ids, result.hypotheses)],
        "ref.trn": [f"{r} ({s}-{i})" for i, r, s in zip(result.ids, result.references, speakers)],
        "hyp.trn": [f"{h} ({s}-{i})" for i, h, s in zip(result.ids, result.hypotheses, speakers)],
    }
    written = []
    for name, lines in files.items():
        path = out / name
        write_text_atomic(path, "".join(line + "\n" for line in lines))
        written.append(path)
    errors = out / "errors.txt"
    write_text_atomic(errors, "".join(f"{i}\n  REF: {r}\n  HYP: {h}\n"
                                      for i, r, h in zip(result.ids, result.references, result.hypotheses) if r != h))
    if result.skipped:
        write_text_atomic(out / "skipped.txt", "".join(f"{i} {reason}\n" for i, reason in result.skipped.items()))
        written.append(out / "skipped.txt")
    else:
        (out / "skipped.txt").unlink(missing_ok=True)  # from an earlier run
    summary = out / "wer.json"
    write_text_atomic(summary, json.dumps(result.summary(), indent=2) + "\n")
    return written + [errors, summary]


def format_summary(result: EvalResult) -> str:
    w, c = result.words, result.chars
    return (
        f"WER {_percent(result.wer)} [ {w.errors} / {w.reference_length}, "
        f"{w.substitutions} sub, {w.deletions} del, {w.insertions} ins ]  "
        f"CER {_percent(result.cer)} [ {c.errors} / {c.reference_length}, "
        f"{c.substitutions} sub, {c.deletions} del, {c.insertions} ins ]  "
        f"({len(result.ids)} utterances)"
    )


def _percent(rate: float) -> str:
    return f"{100 * rate:.2f}%" if math.isfinite(rate) else "undefined (no reference words)"
