"""Tuning the LM weight ``alpha`` and word bonus ``beta`` of beam search on a dev set.

The model's log-probabilities on the dev set are computed once and kept in memory; each
(alpha, beta) point then only re-runs the beam search. The best point is stored next to
the checkpoint, in ``CKPT_DIR/lm_tuning.json``, one entry per (checkpoint file, LM file)::

    {"format": "asr-lm-tuning", "version": 1, "tunings": [
      {"checkpoint": {"name": "best.pt", "size": 1234, "mtime_ns": 1..., "md5": "..."},
       "lm": {"path": "/abs/lm.arpa", "size": 5678, "mtime_ns": 1..., "md5": "..."},
       "alpha": 0.75, "beta": 1.5, "beam_width": 16, "wer": 0.081, "cer": 0.032,
       "dev_manifest": "/abs/dev.jsonl", "utterances": 500, "points": 81, "tuned_at": "..."}]}

An entry applies only while both files are unchanged: same resolved LM path, same size,
and same modification time or, failing that, same MD5 (so a copied or touched file still
matches, and a rebuilt LM or retrained model does not). :func:`decoding_config` fills in
the stored values wherever the caller gave none.

The points are independent, so :func:`sweep` spreads them over worker processes, one per
core by default. Each worker gets the decoder and the log-probabilities once, when it
starts: under the ``fork`` start method (Linux up to Python 3.13) it inherits them, LM
included, without a copy; under ``spawn`` or ``forkserver`` they are pickled and the worker
loads the LM file again.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
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

from asr.checkpoint import LoadedModel
from asr.config import ConfigError
from asr.data import Utterance
from asr.decode import BeamSearchDecoder, DecodingConfig, Hypothesis
from asr.errors import UserError
from asr.evaluate import decode_utterances
from asr.files import atomic_write
from asr.lm import NGramLM
from asr.metrics import corpus_errors
from asr.progress import progress as progress_bar

TUNING_FILE = "lm_tuning.json"
FORMAT = "asr-lm-tuning"
FORMAT_VERSION = 1
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


@dataclass(frozen=True)
class TunedWeights:
    """The stored result of a tuning run for one checkpoint and LM."""

    alpha: float
    beta: float
    beam_width: int
    wer: float
    cer: float
    dev_manifest: str
    utterances: int
    points: int
    source: Path  # the tuning file it was read from or written to


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


class _Recorder:
    """A stand-in decoder that keeps each utterance's log-probs: (T_i, V) float32 on the CPU."""

    def __init__(self) -> None:
        self.log_probs: list[torch.Tensor] = []

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        # log_probs: (B, T, V); lengths: (B,)
        rows = [lp[:n].float().cpu().clone() for lp, n in zip(log_probs, lengths.tolist())]
        self.log_probs += rows
        return [Hypothesis("", extras={"index": len(self.log_probs) - len(rows) + i}) for i in range(len(rows))]


def model_log_probs(
    loaded: LoadedModel, utterances: list[Utterance], progress: bool = False
) -> tuple[list[torch.Tensor], list[Utterance], dict[str, str]]:
    """The model's log-probabilities, (T_i, V) CPU tensors, for the utterances whose audio
    could be read; those utterances, in input order; and id -> error line for the others."""
    recorder = _Recorder()
    decoded = decode_utterances(loaded.model, loaded.config.features, loaded.vocab, utterances, recorder,
                                progress=progress)
    log_probs = [recorder.log_probs[h.extras["index"]] for h in decoded.hypotheses if h is not None]
    return log_probs, decoded.decoded(utterances), decoded.skipped(utterances)


def sweep(
    log_probs: list[torch.Tensor],
    references: list[str],
    decoder: BeamSearchDecoder,
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
    decoder: BeamSearchDecoder, log_probs: list[np.ndarray], references: list[str], alpha: float, beta: float
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
    decoder: BeamSearchDecoder,
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
                          "decoded points in parallel; try fewer jobs (--jobs)") from None
    except BaseException:
        # A point that failed, or Ctrl-C: stop the other points now, not when they finish.
        for worker in workers:
            worker.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


# What a worker process decodes: set once, by _start_worker, when the process starts.
_worker_inputs: tuple[BeamSearchDecoder, list[np.ndarray], list[str]] | None = None


def _start_worker(decoder: BeamSearchDecoder, log_probs: list[np.ndarray], references: list[str]) -> None:
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
    loaded: LoadedModel,
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
    decoder = BeamSearchDecoder(loaded.vocab, beam_width=beam_width, lm=NGramLM(lm_path))
    log_probs, utterances, skipped = model_log_probs(loaded, utterances, progress)
    if not utterances:
        raise ConfigError(f"{dev_manifest or 'dev set'}: no utterance's audio could be read")
    results = sweep(log_probs, [u.text for u in utterances], decoder, points, progress, jobs)
    best = results[0]
    tuned = TunedWeights(best.alpha, best.beta, beam_width, best.wer, best.cer,
                         str(Path(dev_manifest).resolve()) if dev_manifest else "", len(utterances), len(points),
                         tuning_file(checkpoint))
    return results, tuned, skipped


# --- the tuning file ---------------------------------------------------------------------


def tuning_file(checkpoint: str | Path) -> Path:
    return Path(checkpoint).resolve().parent / TUNING_FILE


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": _md5(path)}


def _unchanged(stored: dict, path: Path) -> bool:
    """Whether ``path`` is still the file ``stored`` describes (MD5 only when the time differs)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if stat.st_size != stored.get("size"):
        return False
    return stat.st_mtime_ns == stored.get("mtime_ns") or _md5(path) == stored.get("md5")


def _read_entries(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT or raw.get("version") != FORMAT_VERSION:
            raise ValueError("not an asr LM tuning file of this version")
        entries = raw["tunings"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("'tunings' is not a list of objects")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: damaged LM tuning file ({err}); delete it and rerun asr tune-lm") from None
    return entries


def _matches(entry: dict, checkpoint: Path, lm_path: Path) -> bool:
    """Whether ``entry`` is for this checkpoint file name and LM path, whatever their versions."""
    return (entry.get("checkpoint", {}).get("name") == checkpoint.name
            and entry.get("lm", {}).get("path") == str(lm_path))


def store_tuned(checkpoint: str | Path, lm_path: str | Path, tuned: TunedWeights) -> Path:
    """Write ``tuned`` for (checkpoint, LM) into the tuning file, replacing an older entry."""
    checkpoint, lm_path = Path(checkpoint).resolve(), Path(lm_path).resolve()
    path = tuning_file(checkpoint)
    entries = [e for e in _read_entries(path) if not _matches(e, checkpoint, lm_path)]
    entries.append({
        "checkpoint": {"name": checkpoint.name, **_fingerprint(checkpoint)},
        "lm": {"path": str(lm_path), **_fingerprint(lm_path)},
        "alpha": tuned.alpha, "beta": tuned.beta, "beam_width": tuned.beam_width,
        "wer": tuned.wer, "cer": tuned.cer, "dev_manifest": tuned.dev_manifest,
        "utterances": tuned.utterances, "points": tuned.points,
        "tuned_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    with atomic_write(path) as f:
        f.write(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "tunings": entries}, indent=2) + "\n")
    return path


def find_tuned(checkpoint: str | Path, lm_path: str | Path) -> tuple[TunedWeights | None, bool]:
    """The stored weights for this checkpoint and LM, and whether an entry exists that no
    longer applies because one of the two files changed since it was tuned."""
    checkpoint, lm_path = Path(checkpoint).resolve(), Path(lm_path).resolve()
    path = tuning_file(checkpoint)
    stale = False
    for entry in _read_entries(path):
        if not _matches(entry, checkpoint, lm_path):
            continue
        if not (_unchanged(entry["checkpoint"], checkpoint) and _unchanged(entry["lm"], lm_path)):
            stale = True
            continue
        try:
            return TunedWeights(float(entry["alpha"]), float(entry["beta"]), int(entry["beam_width"]),
                                float(entry["wer"]), float(entry["cer"]), str(entry.get("dev_manifest", "")),
                                int(entry.get("utterances", 0)), int(entry.get("points", 0)), path), False
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{path}: damaged LM tuning entry for {lm_path} ({err!r}); "
                              "delete the file and rerun asr tune-lm") from None
    return None, stale


def decoding_config(
    checkpoint: str | Path,
    decoder: str | None = None,
    beam_width: int | None = None,
    lm: str | Path | None = None,
    alpha: float | None = None,
    beta: float | None = None,
) -> tuple[DecodingConfig, str | None]:
    """The decoding configuration for the given options; ``None`` means not given.

    The decoder defaults to beam search when an LM or a beam width is given, else greedy.
    With an LM, alpha, beta and the beam width not given come from the tuning file when it
    holds values for this checkpoint and LM, else from :class:`DecodingConfig`'s defaults.
    Also returns a one-line note saying where alpha and beta came from (``None`` when the
    caller gave both or no LM is used).
    """
    defaults = DecodingConfig()
    if decoder is None:
        decoder = "beam" if lm is not None or beam_width is not None else "greedy"
    if decoder != "beam":
        if lm is not None or alpha is not None or beta is not None or beam_width is not None:
            raise ConfigError("--lm, --alpha, --beta and --beam-width apply only to --decoder beam")
        return DecodingConfig(decoder=decoder), None
    if lm is None:
        if alpha is not None or beta is not None:
            raise ConfigError("--alpha and --beta weight an LM: give one with --lm")
        return DecodingConfig("beam", beam_width if beam_width is not None else defaults.beam_width), None
    tuned, stale = find_tuned(checkpoint, lm) if Path(lm).is_file() else (None, False)
    base = tuned or defaults
    config = DecodingConfig(
        "beam", beam_width if beam_width is not None else base.beam_width, str(lm),
        base.alpha if alpha is None else alpha, base.beta if beta is None else beta,
    )
    if alpha is not None and beta is not None:
        return config, None
    filled = " ".join(f"{name}={value:g}" for name, value, given in (
        ("alpha", config.alpha, alpha), ("beta", config.beta, beta), ("beam-width", config.beam_width, beam_width),
    ) if given is None)
    if tuned is not None:
        return config, (f"using tuned {filled} (dev set {Path(tuned.dev_manifest).name or '?'}, "
                        f"WER {100 * tuned.wer:.2f}%; from {tuned.source})")
    why = "the LM or the model changed since they were tuned" if stale else "none tuned for this model and LM"
    return config, (f"using default {filled} ({why}; asr tune-lm stores tuned values in {tuning_file(checkpoint)})")
