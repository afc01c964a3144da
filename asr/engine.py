"""The server's engine: one thread that owns the model and transcribes every upload.

Uploads wait in a bounded queue (:meth:`Engine.submit` raises :class:`QueueFull` when it is
full); the engine reads every admitted upload in blocks, cuts it into pieces as ``asr
transcribe`` does, and decodes pieces of all of them in shared forward passes, one piece of
each upload per round, so a long file does not hold up the short ones behind it. Live
streams run their decoding on the same thread, between batches (:meth:`Engine.call`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from asr.audio import SAMPLE_RATE, AudioError, stream_audio_bytes
from asr.batching import Batcher, Transcript
from asr.hypothesis import Decoder
from asr.inference import Recognizer
from asr.listen import Listener, ListenOptions
from asr.segment import Piece
from asr.transcribe import TranscribeOptions

log = logging.getLogger("asr.serve")  # the server's log, whichever of its modules writes it

MAX_AUDIO_SECONDS = 3 * 3600.0
MAX_QUEUE = 64  # uploads admitted and not yet answered
BATCH_WAIT_SECONDS = 0.005  # how long a small batch waits for more uploads before it is decoded


class QueueFull(Exception):
    """The engine holds as many uploads as it may."""


class AudioTooLong(Exception):
    """An upload's audio runs past the duration limit."""


class TranscriptionFailed(Exception):
    """The model or decoder failed on an upload: the server's fault, not the audio's."""


class ShuttingDown(Exception):
    """The server stopped before an upload was transcribed."""


class BadAudio(Exception):
    """An upload that cannot be decoded; ``str()`` is one line."""


@dataclass
class _Job:
    id: int
    pieces: object  # Iterator[Piece]
    future: concurrent.futures.Future
    reading: bool = True
    too_long: bool = False


@dataclass
class _Call:
    """Work for the engine's thread, for a caller on another thread."""

    function: Callable
    args: tuple
    future: concurrent.futures.Future


@dataclass
class EngineStats:
    queued: int  # uploads admitted and not yet answered
    max_queue: int
    requests: int  # answered since the start
    audio_seconds: float  # of the answered requests' audio


class Engine:
    """One recognizer serving many callers from a thread: :meth:`submit` an upload, get a
    future of its :class:`~asr.batching.Transcript`.

    The future fails with :class:`BadAudio` for audio that cannot be decoded, and with
    :class:`AudioTooLong` for audio longer than ``max_audio_seconds``; :meth:`submit` raises
    :class:`QueueFull` when ``max_queue`` uploads are already waiting or being decoded.
    """

    def __init__(self, load: Callable[[], tuple[Recognizer, Decoder]], options: TranscribeOptions | None = None,
                 max_queue: int = MAX_QUEUE, max_audio_seconds: float = MAX_AUDIO_SECONDS) -> None:
        """``load`` makes the recognizer and decoder; it runs on the engine's thread, which then
        does all of the model's work. (A second thread running torch would start a second
        OpenMP team; with more OpenMP threads than cores, libgomp stops spinning between
        parallel regions, and the recurrent layers' many small ones ran 2.4x slower.)
        Its errors are raised here."""
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.options = options or TranscribeOptions()
        self.max_queue, self.max_audio_seconds = max_queue, max_audio_seconds
        self._inbox: queue.SimpleQueue[_Job | _Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = self._requests = self._next_id = 0
        self._closed = False
        self._audio_seconds = 0.0
        self._failed: set[int] = set()  # uploads the model or decoder failed on (engine thread only)
        loaded: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(load, loaded), name="asr-engine", daemon=True)
        self._thread.start()
        self._recognizer, self._decoder = loaded.result()

    def listener(self, options: ListenOptions | None = None) -> Listener:
        """A live stream's :class:`~asr.listen.Listener`; run its ``feed`` and ``finish``
        through :meth:`call`, on the engine's thread."""
        return Listener(self._recognizer, self._decoder, options)

    def call(self, function: Callable, *args):
        """``function(*args)`` run on the engine's thread, between batches; its result. Torch
        work from any other thread would start a second OpenMP team (see above)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise ShuttingDown
            self._inbox.put(_Call(function, args, future))
        return future.result()

    def submit(self, data: bytes, name: str) -> concurrent.futures.Future:
        with self._lock:
            if self._queued >= self.max_queue:
                raise QueueFull
            self._queued += 1
            self._next_id += 1
            job_id = self._next_id
        pieces = self.options.pieces(stream_audio_bytes(data, name, self.options.read_seconds))
        job = _Job(job_id, pieces, concurrent.futures.Future())
        job.future.set_running_or_notify_cancel()
        job.future.add_done_callback(self._release)
        self._inbox.put(job)
        return job.future

    def _release(self, future: concurrent.futures.Future) -> None:
        with self._lock:
            self._queued -= 1
            self._requests += 1
            if not future.exception():
                self._audio_seconds += future.result().duration

    def stats(self) -> EngineStats:
        with self._lock:
            return EngineStats(self._queued, self.max_queue, self._requests, self._audio_seconds)

    def close(self) -> None:
        """Stop the thread; what it had not started (a live stream's call made as the server
        stopped) fails with :class:`ShuttingDown` rather than wait forever."""
        with self._lock:
            self._closed = True
            self._inbox.put(None)
        self._thread.join()
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not None and not item.future.done():
                item.future.set_exception(ShuttingDown())

    def _run(self, load: Callable[[], tuple[Recognizer, Decoder]], loaded: concurrent.futures.Future) -> None:
        try:
            recognizer, decoder = load()
        except BaseException as err:  # noqa: BLE001  (handed to the caller, which raises it)
            loaded.set_exception(err)
            return
        loaded.set_result((recognizer, decoder))
        batcher = Batcher(recognizer, decoder, self.options.batch_seconds(recognizer.device))
        limit = self.max_audio_seconds * SAMPLE_RATE
        active: list[_Job] = []
        waited = False  # for more uploads since the last forward pass
        while True:
            try:
                # Wait for work when there is none; otherwise take what has arrived and go on.
                item = self._inbox.get() if not active else self._inbox.get_nowait()
                while True:
                    if not self._take(item, active, batcher):
                        return
                    item = self._inbox.get_nowait()
            except queue.Empty:
                pass
            try:
                # One piece of each upload still being read; the batcher decodes a batch as it
                # fills. When nothing more can be read, a batch under half full waits a moment
                # once for more uploads (under load they arrive one by one), then is decoded.
                read = False
                for job in active:
                    if job.reading:
                        read |= self._read_piece(job, batcher, limit)
                if not read:
                    if batcher.underfilled() and not waited:
                        waited = True
                        try:
                            if not self._take(self._inbox.get(timeout=BATCH_WAIT_SECONDS), active, batcher):
                                return
                            continue
                        except queue.Empty:
                            pass
                    self._flush(batcher)
                    waited = False
                for job in list(active):
                    transcript = batcher.take(job.id)
                    if transcript is not None:
                        active.remove(job)
                        self._finish(job, transcript)
            except Exception as err:  # a fault of the engine itself: its uploads fail, it goes on
                self._fail_batch(batcher, err, *(job.id for job in active))
                for job in active:
                    if not job.future.done():
                        job.future.set_exception(TranscriptionFailed(f"transcription failed ({type(err).__name__})"))
                    batcher.drop(job.id)
                    self._failed.discard(job.id)
                active.clear()

    def _take(self, item: _Job | _Call | None, active: list[_Job], batcher: Batcher) -> bool:
        """Start an upload or run a call; False for the signal to stop."""
        if item is None:
            for waiting in active:
                waiting.future.set_exception(ShuttingDown())
            return False
        if isinstance(item, _Call):
            _run_call(item)
        else:
            active.append(item)
            batcher.open(item.id, f"job {item.id}")
        return True

    def _read_piece(self, job: _Job, batcher: Batcher, limit: float) -> bool:
        """Read ``job``'s next piece into the batcher; False when none went in: the upload
        has ended, or failed."""
        try:
            piece: Piece | None = next(job.pieces, None)  # type: ignore[call-overload]
        except AudioError as err:
            return self._stop_reading(job, batcher, err.reason)
        except Exception as err:  # a reader's failure other than bad audio: this upload fails
            log.exception("reading an upload failed")
            self._failed.add(job.id)
            return self._stop_reading(job, batcher, f"reading the audio failed ({type(err).__name__})")
        if piece is None:
            job.reading = False
            batcher.end(job.id)
            return False
        if piece.start + len(piece.samples) > limit:
            job.too_long = True
            return self._stop_reading(job, batcher, "too long")
        try:
            batcher.add(job.id, piece)  # decodes the batch first when the piece would overflow it
        except Exception as err:
            self._fail_batch(batcher, err, job.id)  # the piece is lost with the batch: its upload fails too
            job.reading = False
            return False
        return True

    @staticmethod
    def _stop_reading(job: _Job, batcher: Batcher, error: str) -> bool:
        job.reading = False
        batcher.fail(job.id, error)
        return False

    def _flush(self, batcher: Batcher) -> None:
        try:
            batcher.flush()
        except Exception as err:
            self._fail_batch(batcher, err)

    def _fail_batch(self, batcher: Batcher, err: Exception, *also: int) -> None:
        """The model or decoder failed on a batch: its uploads fail, the next batch starts afresh."""
        log.exception("transcription failed", exc_info=err)
        error = f"transcription failed ({type(err).__name__})"
        self._failed.update(batcher.fail_batch(error))
        self._failed.update(file for file in also if batcher.fail(file, error))

    def _finish(self, job: _Job, transcript: Transcript) -> None:
        job.pieces.close()  # type: ignore[attr-defined]  # an abandoned reader lets go of its buffers
        if job.too_long:
            job.future.set_exception(AudioTooLong())
        elif job.id in self._failed:
            self._failed.discard(job.id)
            job.future.set_exception(TranscriptionFailed(transcript.error))
        elif transcript.error is not None:
            job.future.set_exception(BadAudio(transcript.error))
        else:
            job.future.set_result(transcript)


def _run_call(call: _Call) -> None:
    try:
        call.future.set_result(call.function(*call.args))
    except Exception as err:
        call.future.set_exception(err)
