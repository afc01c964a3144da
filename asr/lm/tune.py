"""Tuning the LM weight ``alpha`` and word bonus ``beta`` of beam search on a dev set.

The model's log-probabilities on the dev set are computed once and kept in memory; each
(alpha, beta) point then only re-runs the beam search. The best point is stored next to
the checkpoint by :mod:`asr.lm.weights_file`.

The points are independent, so :func:`sweep` spreads them over worker processes, one per
core by default. Each worker gets the decoder and the log-probabilities once, when it
starts: under the ``fork`` start method (Linux up to Python 3.13) it inherits them, LM
included, without a copy; under ``spawn`` or ``forkserver`` they are pickled and the worker
loads the LM file again.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import random
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.errors import ConfigError
from asr.data import Utterance
from asr.decode import DecodingConfig, build_decoder
from asr.hypothesis import WeightedDecoder
from asr.errors import UserError
from asr.evaluate import batched_log_probs
from asr.inference import Recognizer
from asr.lm.load import NGramLM
from asr.metrics import corpus_errors
from asr.progress import progress as progress_bar
from asr.lm.weights_file import TunedWeights, tuning_file

DEFAULT_ALPHAS = "0:2:0.25"
DEFAULT_BETAS = "-1:3:0.5"


class TuningError(UserError, RuntimeError):
    """A sweep's worker process died (killed, perhaps for lack of memory)."""


@dataclass(frozen=True)
class TuningPoint:
    """Dev-set error rates of one (alpha, beta) point."""

    alpha: float
    beta: float
    wer: float
    cer: float


def parse_values(text: str) -> tuple[float, ...]:
    """``"0:2:0.5"`` (start:stop:step, stop included) or ``"0.5,1,2"`` -> values."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0 or stop < start or (stop - start) / step > 10_000:
                raise ValueError
            count = math.floor((stop - start) / step + 1e-9) + 1
            return tuple(round(start + i * step, 10) for i in range(count))
        values = tuple(float(v) for v in text.split(","))
        if not all(map(math.isfinite, values)):
            raise ValueError
    except ValueError:
        raise ConfigError(f"{text!r}: expected START:STOP:STEP with STEP > 0 and STOP >= START, "
                          "or comma-separated numbers") from None
    return values


def grid_points(alphas: tuple[float, ...], betas: tuple[float, ...]) -> list[tuple[float, float]]:
    """Every (alpha, beta) pair."""
    return [(a, b) for a in alphas for b in betas]


def random_points(
    alphas: tuple[float, ...], betas: tuple[float, ...], trials: int, seed: int = 0
) -> list[tuple[float, float]]:
    """``trials`` points drawn uniformly from [min, max] of ``alphas`` x [min, max] of ``betas``."""
    if trials < 1:
        raise ConfigError(f"the number of random trials must be at least 1, got {trials}")
    rng = random.Random(seed)
    return [(round(rng.uniform(min(alphas), max(alphas)), 4), round(rng.uniform(min(betas), max(betas)), 4))
            for _ in range(trials)]


def model_log_probs(
    recognizer: Recognizer, utterances: list[Utterance], progress: bool = False
) -> tuple[list[torch.Tensor], list[Utterance], dict[str, str]]:
    """The recognizer's log-probabilities, (T_i, V) CPU tensors, for the utterances whose audio
    could be read; those utterances, in input order; and id -> error line for the others."""
    failures: dict[int, str] = {}
    rows: dict[int, torch.Tensor] = {}
    for batch in batched_log_probs(recognizer, utterances, failures, progress=progress):
        for index, lp, n in zip(batch.indices, batch.log_probs, batch.lengths.tolist()):
            rows[index] = lp[:n].float().cpu().clone()  # (T_i, V); clone: no view keeps the batch alive
    kept = sorted(rows)
    return [rows[i] for i in kept], [utterances[i] for i in kept], {
        utterances[i].id: failures[i] for i in sorted(failures)}


def sweep(
    log_probs: list[torch.Tensor],
    references: list[str],
    decoder: WeightedDecoder,
    points: list[tuple[float, float]],
    progress: bool = False,
    jobs: int = 0,
) -> list[TuningPoint]:
    """Decode every utterance (``log_probs[i]``: (T_i, V)) with ``decoder`` reweighted to
    each (alpha, beta) point; return the points best first (lowest WER, then CER, then
    smallest alpha and beta).

    ``jobs`` worker processes decode the points (0: one per available core; 1: all in this
    process). The results do not depend on it.
    """
    if not points:
        raise ConfigError("no (alpha, beta) points to try")
    if jobs < 0:
        raise ConfigError(f"jobs must be at least 0 (0: all cores), got {jobs}")
    jobs = min(jobs or available_cores(), len(points))
    arrays = [lp.detach().float().cpu().numpy() for lp in log_probs]  # each (T_i, V), plain CPU arrays for workers
    results: list[TuningPoint | None] = [None] * len(points)
    best = None
    with (progress_bar(total=len(points), desc="tune-lm", unit="point", disable=not progress) as bar,
          _scored_points(arrays, references, decoder, points, jobs) as scored):
        for index, point in scored:
            results[index] = point
            best = point if best is None or _rank(point) < _rank(best) else best
            bar.update(1)
            bar.set_postfix_str(f"best WER {100 * best.wer:.2f}% at alpha={best.alpha:g} beta={best.beta:g}")
    return sorted(results, key=_rank)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _score(
    decoder: WeightedDecoder, log_probs: list[np.ndarray], references: list[str], alpha: float, beta: float
) -> TuningPoint:
    """Error rates of ``decoder`` at (alpha, beta) on every utterance (``log_probs[i]``: (T_i, V))."""
    weighted = decoder.with_weights(alpha, beta)
    texts = [weighted(torch.from_numpy(lp)[None], torch.tensor([lp.shape[0]]))[0].text for lp in log_probs]
    words, chars = corpus_errors(list(zip(references, texts)))
    return TuningPoint(alpha, beta, words.rate, chars.rate)


@contextlib.contextmanager
def _scored_points(
    log_probs: list[np.ndarray],
    references: list[str],
    decoder: WeightedDecoder,
    points: list[tuple[float, float]],
    jobs: int,
) -> Iterator[Iterator[tuple[int, TuningPoint]]]:
    """(index in ``points``, result) for every point, as each finishes: computed here when
    ``jobs`` is 1, else by ``jobs`` worker processes, which end with the ``with`` block."""
    if jobs == 1:
        yield ((i, _score(decoder, log_probs, references, a, b)) for i, (a, b) in enumerate(points))
        return
    # A process pool, not threads: the search holds the GIL, and a decoder's caches are its own.
    # concurrent.futures rather than multiprocessing.Pool, which waits forever for the point
    # of a worker that died.
    children = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(jobs, initializer=_start_worker, initargs=(decoder, log_probs, references))
    workers = []
    try:
        futures = {pool.submit(_score_point, a, b): i for i, (a, b) in enumerate(points)}
        workers = [p for p in multiprocessing.active_children() if p not in children]  # all started by now
        yield ((futures[future], future.result()) for future in as_completed(futures))
    except BrokenProcessPool:
        raise TuningError(f"a tune-lm worker process died (killed, perhaps for lack of memory) while {jobs} "
                          "decoded points in parallel; try fewer of them (jobs)") from None
    except BaseException:
        # A point that failed, or Ctrl-C: stop the other points now, not when they finish.
        for worker in workers:
            worker.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


# What a worker process decodes: set once, by _start_worker, when the process starts.
_worker_inputs: tuple[WeightedDecoder, list[np.ndarray], list[str]] | None = None


def _start_worker(decoder: WeightedDecoder, log_probs: list[np.ndarray], references: list[str]) -> None:
    global _worker_inputs
    _worker_inputs = decoder, log_probs, references
    # The workers already fill every core, and a forked child must not enter the parent's
    # OpenMP thread pool, which does not exist in it.
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group; the parent alone handles it, and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _score_point(alpha: float, beta: float) -> TuningPoint:
    assert _worker_inputs is not None, "runs only in a worker started by _start_worker"
    return _score(*_worker_inputs, alpha, beta)


def _rank(point: TuningPoint) -> tuple[float, float, float, float]:
    return (point.wer, point.cer, point.alpha, point.beta)


def tune_lm(
    checkpoint: str | Path,
    recognizer: Recognizer,
    utterances: list[Utterance],
    lm_path: str | Path,
    points: list[tuple[float, float]],
    beam_width: int = 16,
    dev_manifest: str | Path = "",
    progress: bool = False,
    jobs: int = 0,
) -> tuple[list[TuningPoint], TunedWeights, dict[str, str]]:
    """Search ``points`` on ``utterances`` with ``jobs`` processes (see :func:`sweep`);
    :func:`store_tuned` then keeps the best next to ``checkpoint`` (a separate step, so that
    a caller can show the results first).

    Returns every point (best first), the best as it would be stored, and id -> error line
    for each utterance left out because its audio could not be read.
    """
    if not utterances:
        raise ConfigError(f"{dev_manifest or 'dev set'}: no utterances to tune on")
    if beam_width < 1:
        raise ConfigError(f"beam width must be at least 1, got {beam_width}")
    # Built first, so that a bad LM or a model/LM mismatch fails before the slow part.
    decoder = build_decoder(recognizer.vocab, DecodingConfig("beam", beam_width), NGramLM(lm_path))
    log_probs, utterances, skipped = model_log_probs(recognizer, utterances, progress)
    if not utterances:
        raise ConfigError(f"{dev_manifest or 'dev set'}: no utterance's audio could be read")
    results = sweep(log_probs, [u.text for u in utterances], decoder, points, progress, jobs)
    best = results[0]
    tuned = TunedWeights(best.alpha, best.beta, beam_width, best.wer, best.cer,
                         str(Path(dev_manifest).resolve()) if dev_manifest else "", len(utterances), len(points),
                         tuning_file(checkpoint))
    return results, tuned, skipped
