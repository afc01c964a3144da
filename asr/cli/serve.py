"""Commands that serve a model: serve (HTTP, OpenAI's transcription protocol and a web page)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
from pathlib import Path

from asr.cli.args import add_decoder_args, add_model_args, decoder, fail, finite, whole

API_KEY_VARIABLE = "ASR_API_KEY"


def add_serve(sub) -> None:
    # Defaults are asr.serve's, filled in when the command runs (importing it here would make
    # every command pay for torch); the help states them, and a test checks it does truly.
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
    from asr.serve import MAX_AUDIO_SECONDS, MAX_QUEUE, MAX_UPLOAD_MB, Engine, ServerSettings, create_app
    from asr.serve import require_server_packages

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

    recognizer = load_recognizer(args.model, args.device, args.compute_type)
    search, _ = decoder(args, recognizer.vocab)
    engine = Engine(recognizer, search, max_queue=max_queue, max_audio_seconds=max_audio_seconds)
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
