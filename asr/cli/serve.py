"""Commands that run a model live: serve (HTTP, OpenAI's transcription protocol and a web page) and
listen (captions of a stream as it arrives)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path

from asr.cli.args import add_decoder_args, add_model_args, decoder, fail, finite, whole
from asr.errors import UserError

API_KEY_VARIABLE = "ASR_API_KEY"


def add_serve(sub) -> None:
    # Defaults are asr.serve's and asr.engine's, filled in when the command runs (importing them
    # here would make every command pay for torch); the help states them, and a test checks it
    # does truly.
    p = sub.add_parser("serve", help="serve a model over HTTP: OpenAI's /v1/audio/transcriptions and a web page")
    add_model_args(p, onnx=True, compute_type=True)
    add_decoder_args(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=whole(0, 65535), default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--api-key", metavar="KEY",
                   help=f"require 'Authorization: Bearer KEY' on the API (default: ${API_KEY_VARIABLE} when set)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN (https://example.org, or *) call the API; repeatable (default: none)")
    p.add_argument("--max-queue", type=whole(1, 100_000), metavar="N",
                   help="requests held at once, waiting or being decoded; more are answered 503 (default 64)")
    p.add_argument("--max-upload-mb", type=finite, metavar="MB",
                   help="largest upload; larger ones are answered 413 (default 100)")
    p.add_argument("--max-audio-seconds", type=finite, metavar="S",
                   help="longest audio; longer is answered 413 (default 10800, three hours)")
    p.add_argument("--served-model-name", metavar="NAME", help="the model's id in /v1/models (default: file name)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="server log on stderr (default info: one line per request)")
    p.set_defaults(func=run_serve)


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or one clear line when the address cannot be had."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(err.errno, f"cannot listen on {host}:{port} ({err.strerror})") from None
    sock.listen(128)
    return sock


def run_serve(args: argparse.Namespace) -> int:
    from asr.engine import MAX_AUDIO_SECONDS, MAX_QUEUE, Engine
    from asr.serve import MAX_UPLOAD_MB, ServerSettings, create_app, require_server_packages

    require_server_packages()
    import uvicorn

    max_queue = args.max_queue or MAX_QUEUE
    max_upload_mb = MAX_UPLOAD_MB if args.max_upload_mb is None else args.max_upload_mb
    max_audio_seconds = MAX_AUDIO_SECONDS if args.max_audio_seconds is None else args.max_audio_seconds
    if max_upload_mb <= 0 or max_audio_seconds <= 0:
        return fail("--max-upload-mb and --max-audio-seconds must be positive")
    api_key = args.api_key or os.environ.get(API_KEY_VARIABLE) or None
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    sock = _listen(args.host, args.port)  # before loading the model: a taken port fails at once
    from asr.inference import load_recognizer

    def load():  # on the engine's thread, which does all the model's work
        recognizer = load_recognizer(args.model, args.device, args.compute_type)
        return recognizer, decoder(args, recognizer.vocab)[0]

    engine = Engine(load, max_queue=max_queue, max_audio_seconds=max_audio_seconds)
    model = Path(args.model)
    settings = ServerSettings(model_name=args.served_model_name or model.stem,
                              max_upload_bytes=int(max_upload_mb * (1 << 20)), api_key=api_key,
                              cors_origins=tuple(args.cors_origin), created=int(model.stat().st_mtime))
    app = create_app(engine, settings)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"asr: serving {model} at http://{shown}:{port}/ (API: /v1/audio/transcriptions"
          f"{', key required' if api_key else ''})", file=sys.stderr, flush=True)
    if not loopback and not api_key:
        print(f"asr: warning: listening on {args.host} without an API key: anyone who can reach this machine "
              f"can use the server (--api-key or ${API_KEY_VARIABLE})", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5))
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again for the
    # handler it found: with these, a stop asked for is a clean exit.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        engine.close()
        sock.close()
    return 0


# --- asr listen -----------------------------------------------------------------------------

PCM_BLOCK_SECONDS = 0.1  # audio read from stdin or a microphone at a time


def add_listen(sub) -> None:
    p = sub.add_parser("listen", help="live captions: transcribe a stream (stdin PCM, a file, the microphone) "
                                      "as it arrives")
    add_model_args(p, onnx=True, compute_type=True)
    add_decoder_args(p)
    p.add_argument("--input", default="-", metavar="-|FILE|mic",
                   help="- (default): raw signed 16-bit little-endian mono PCM on stdin (arecord -f S16_LE -r 16000 "
                        "-c 1 -t raw, ffmpeg ... -f s16le -ac 1 -ar 16000 -); FILE: any audio file; mic: the "
                        "default input device (needs the sounddevice package)")
    p.add_argument("--rate", type=whole(4000, 768_000), default=16_000, help="stdin PCM sample rate (default 16000)")
    p.add_argument("--realtime", action="store_true", help="read FILE at real-time pace (default: as fast as it can)")
    p.add_argument("--format", default="text", choices=("text", "jsonl"),
                   help="text: captions (on a terminal the partial line is rewritten in place; otherwise one line "
                        "per segment); jsonl: one JSON object per update")
    group = p.add_argument_group("latency and cost")
    group.add_argument("--update", type=finite, default=0.25, metavar="SECONDS",
                       help="decode the open segment after this much new audio (default 0.25)")
    group.add_argument("--right-context", type=finite, default=0.6, metavar="SECONDS",
                       help="audio heard after a word before it is final; less is faster and less accurate "
                            "(default 0.6)")
    group.add_argument("--pause", type=finite, default=0.25, metavar="SECONDS",
                       help="silence after speech that closes a segment (default 0.25)")
    group.add_argument("--max-segment", type=finite, default=12.0, metavar="SECONDS",
                       help="longest audio decoded at once; bounds the cost of each update (default 12)")
    p.set_defaults(func=run_listen)


def _stdin_blocks(rate: int):
    """Float32 blocks of the s16le PCM on stdin, at 16 kHz."""
    from asr.audio import PcmDecoder

    stream, pcm = sys.stdin.buffer, PcmDecoder(rate)
    size = max(2, round(PCM_BLOCK_SECONDS * rate) * 2)
    while True:
        data = stream.read1(size) if hasattr(stream, "read1") else stream.read(size)
        samples = pcm.decode(data, last=not data)
        if len(samples):
            yield samples
        if not data:
            return


def _file_blocks(path: str, realtime: bool):
    import time

    from asr.audio import SAMPLE_RATE, stream_audio

    started, heard = time.monotonic(), 0
    for block in stream_audio(path, PCM_BLOCK_SECONDS):
        heard += len(block)
        if realtime:
            time.sleep(max(0.0, started + heard / SAMPLE_RATE - time.monotonic()))
        yield block


def _mic_blocks():
    import queue

    from asr.audio import SAMPLE_RATE

    try:
        import sounddevice
    except (ImportError, OSError) as err:  # OSError: the package is there, PortAudio is not
        raise UserError(f"--input mic needs the sounddevice package and PortAudio ({err}); or pipe PCM into "
                        "--input -, e.g. arecord -f S16_LE -r 16000 -c 1 -t raw | asr listen ...") from None
    try:
        sounddevice.check_input_settings(samplerate=SAMPLE_RATE, channels=1, dtype="float32")
    except Exception as err:  # PortAudioError or ValueError: no input device, or it cannot record 16 kHz mono
        raise UserError(f"no microphone to record from ({' '.join(str(err).split())})") from None
    blocks: queue.SimpleQueue = queue.SimpleQueue()
    with sounddevice.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                 blocksize=round(PCM_BLOCK_SECONDS * SAMPLE_RATE),
                                 callback=lambda data, *_: blocks.put(data[:, 0].copy())):
        while True:
            yield blocks.get()


class _Captions:
    """Captions on a terminal: final words stay, the partial result is rewritten in place,
    and a pause ends the line."""

    def __init__(self, out, terminal: bool) -> None:
        self.out, self.terminal, self.line = out, terminal, []

    def show(self, update) -> None:
        if update.final:
            self.line += [w.text for w in update.words]
        partial = [] if update.final else [w.text for w in update.words]
        if self.terminal:
            dim = f"\033[2m{' '.join(partial)}\033[0m" if partial else ""
            self.out.write("\r\033[K" + " ".join(self.line) + (" " if self.line and dim else "") + dim)
        if update.final and update.endpoint:
            if self.line or self.terminal:
                self.out.write(("" if self.terminal else " ".join(self.line)) + "\n")
            self.line = []
        self.out.flush()


def run_listen(args: argparse.Namespace) -> int:
    import json

    from asr.inference import load_recognizer
    from asr.listen import Listener, ListenOptions, listen

    try:
        options = ListenOptions(update_seconds=args.update, right_context_seconds=args.right_context,
                                pause_seconds=args.pause, max_segment_seconds=args.max_segment)
    except ValueError as err:
        return fail(f"listen: {err}")
    if args.input == "-":
        if sys.stdin.isatty():
            return fail("--input -: stdin is a terminal; pipe raw 16-bit PCM into asr listen (or use --input FILE)")
        blocks = _stdin_blocks(args.rate)
    elif args.input == "mic":
        blocks = _mic_blocks()
    else:
        from asr.audio import check_audio_file

        check_audio_file(args.input)
        blocks = _file_blocks(args.input, args.realtime)
    recognizer = load_recognizer(args.model, args.device, args.compute_type)
    search, _ = decoder(args, recognizer.vocab)
    captions = _Captions(sys.stdout, sys.stdout.isatty())
    try:
        for update in listen(Listener(recognizer, search, options), blocks):
            if args.format == "jsonl":
                print(json.dumps(update.to_json(), ensure_ascii=False), flush=True)
            else:
                captions.show(update)
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        sys.stderr.close()
    return 0
