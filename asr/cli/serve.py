"""Commands that run a model live: serve (HTTP, OpenAI's transcription protocol and a web page) and
listen (captions of a stream as it arrives)."""

from __future__ import annotations

import argparse
import dataclasses
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
                   help=f"require 'Authorization: Bearer KEY' on the API (default: ${API_KEY_VARIABLE} when set); "
                        "an empty key, or one with spaces or non-ASCII characters, is refused")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN (https://example.org, or *) call the API; repeatable (default: none)")
    p.add_argument("--served-model-name", metavar="NAME", help="the model's id in /v1/models (default: file name)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="server log on stderr (default info: one line per request or event, repeats limited)")
    _add_limits(p.add_argument_group("limits: what one client may cost the others"))
    p.set_defaults(func=run_serve)


def _more_than_zero(text: str) -> float:
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be more than 0")
    return value


def _add_limits(group) -> None:
    group.add_argument("--max-queue", type=whole(1, 100_000), metavar="N",
                       help="requests held at once, waiting or being decoded; more are answered 503 (default 64)")
    group.add_argument("--max-upload-mb", type=_more_than_zero, metavar="MB",
                       help="largest upload; larger ones are answered 413 (default 100)")
    group.add_argument("--max-audio-seconds", type=_more_than_zero, metavar="S",
                       help="longest audio; longer is answered 413 (default 10800, three hours)")
    group.add_argument("--max-receiving-mb", type=_more_than_zero, metavar="MB",
                       help="upload bytes being received at once, over all clients; past it, 503 (default 256)")
    group.add_argument("--max-connections", type=whole(1, 1_000_000), metavar="N",
                       help="connections open at once, HTTP and live; at the cap a new one takes the place of the "
                            "longest-idle one, or is answered 503 when all are busy (default 256, lowered to fit "
                            "ulimit -n)")
    group.add_argument("--header-timeout", type=_more_than_zero, metavar="S",
                       help="from connecting, or from the last answer, to a request's whole head; then the "
                            "connection is closed (default 10)")
    group.add_argument("--body-timeout", type=_more_than_zero, metavar="S",
                       help="longest pause in an upload's body; then 408 (default 30)")
    group.add_argument("--keep-alive-timeout", type=_more_than_zero, metavar="S",
                       help="an idle keep-alive connection is closed after this (default 5)")
    group.add_argument("--max-streams", type=whole(1, 10_000), metavar="N",
                       help="live streams at once; more are closed with code 1013 (default 8)")
    group.add_argument("--live-idle-timeout", type=_more_than_zero, metavar="S",
                       help="a live stream that sends nothing for this long is closed, code 1008 (default 30)")
    group.add_argument("--max-frame-seconds", type=_more_than_zero, metavar="S",
                       help="audio in one live frame, at any sample rate; a longer frame closes the stream, "
                            "code 1009 (default 10)")
    group.add_argument("--max-live-speed", type=_more_than_zero, metavar="X",
                       help="a live stream that sends audio faster than X times real time (after a first "
                            "--max-frame-seconds) is closed, code 1008 (default 2)")
    group.add_argument("--drain-timeout", type=_more_than_zero, metavar="S",
                       help="on SIGTERM or Ctrl-C, in-flight requests have this long to finish; then they are "
                            "answered 503 (default 10)")


# The limits' options: the ServerSettings field each fills, and how (MB to bytes).
_MB = 1 << 20
_LIMITS = {"max_streams": ("max_streams", int), "max_connections": ("max_connections", int),
           "max_upload_mb": ("max_upload_bytes", lambda mb: int(mb * _MB)),
           "max_receiving_mb": ("max_receiving_bytes", lambda mb: int(mb * _MB)),
           **{name: (name, float) for name in ("header_timeout", "body_timeout", "keep_alive_timeout",
                                               "live_idle_timeout", "max_frame_seconds", "max_live_speed",
                                               "drain_timeout")}}


def _api_key(args: argparse.Namespace) -> str | None:
    """The key from --api-key, else $ASR_API_KEY; one that is set but could protect nothing (or
    match nothing) is a UserError: serving without a key must be asked for by giving none."""
    from asr.serve import check_api_key

    source, key = ("--api-key", args.api_key) if args.api_key is not None else (
        f"${API_KEY_VARIABLE}", os.environ.get(API_KEY_VARIABLE))
    if key is not None:
        try:
            check_api_key(key)
        except ValueError as err:
            raise UserError(f"{source}: {err}") from None
    return key


def _settings(args: argparse.Namespace, model: Path):
    """The server's settings from the command line; a UserError for a limit it cannot keep."""
    from asr.connections import fit_connections
    from asr.serve import ServerSettings

    limits = {field: convert(value) for option, (field, convert) in _LIMITS.items()
              if (value := getattr(args, option)) is not None}
    try:
        settings = ServerSettings(model_name=args.served_model_name or model.stem, api_key=_api_key(args),
                                  cors_origins=tuple(args.cors_origin), **limits)
    except ValueError as err:
        raise UserError(str(err)) from None
    connections, warning = fit_connections(settings.max_connections)
    if warning:
        print(f"asr: warning: {warning}", file=sys.stderr, flush=True)
    return dataclasses.replace(settings, max_connections=connections)


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
    from asr.serve import require_server_packages

    require_server_packages()
    from asr.connections import make_server
    from asr.engine import MAX_AUDIO_SECONDS, MAX_QUEUE, Engine
    from asr.serve import create_app

    model = Path(args.model)
    settings = _settings(args, model)  # before the model loads: a bad option fails at once
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    sock = _listen(args.host, args.port)  # before loading the model: a taken port fails at once
    from asr.inference import load_recognizer

    def load():  # on the engine's thread, which does all the model's work
        recognizer = load_recognizer(args.model, args.device, args.compute_type)
        return recognizer, decoder(args, recognizer.vocab)[0]

    engine = Engine(load, max_queue=args.max_queue or MAX_QUEUE,
                    max_audio_seconds=args.max_audio_seconds or MAX_AUDIO_SECONDS)
    settings = dataclasses.replace(settings, created=int(model.stat().st_mtime))
    app = create_app(engine, settings)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"asr: serving {model} at http://{shown}:{port}/ (API: /v1/audio/transcriptions"
          f"{', key required' if settings.api_key else ''})", file=sys.stderr, flush=True)
    if not loopback and not settings.api_key:
        print(f"asr: warning: listening on {args.host} without an API key: anyone who can reach this machine "
              f"can use the server (--api-key or ${API_KEY_VARIABLE})", file=sys.stderr, flush=True)
    server = make_server(app, settings, args.log_level)
    # uvicorn stops gracefully on SIGINT and SIGTERM (the app drains its requests first), then
    # raises the signal again for the handler it found: with these, a stop asked for is a clean exit.
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
