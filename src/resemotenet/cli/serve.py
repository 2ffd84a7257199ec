"""``resemotenet serve``: the HTTP service and its browser page (``resemotenet.serve``).

Safe by default: bound to 127.0.0.1; any other ``--host`` needs ``--token`` (or the
RESEMOTENET_TOKEN environment variable); nothing is kept on disk unless ``--review DIR`` or
``--jobs-dir DIR`` (job results otherwise go to a temporary folder removed on exit).
"""

from __future__ import annotations

import argparse

from .common import add_predictor_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP, with a browser page (live, jobs, review)")
    add_predictor_args(
        p,
        min_confidence_help="below this probability a face is 'uncertain' and goes to review",
        detector_note="; one thread per worker",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--token", help="API token; required for a non-local --host (or set RESEMOTENET_TOKEN)")
    p.add_argument(
        "--review", metavar="DIR", help="queue uncertain faces in DIR for a person to label (off: no crop is written)"
    )
    p.add_argument(
        "--review-max",
        type=int,
        default=2000,
        help="pending review crops; when full, new ones are refused, none evicted (default: %(default)s)",
    )
    p.add_argument(
        "--review-per-request",
        type=int,
        default=8,
        help="review crops one request or live frame may add (default: %(default)s)",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also let in pages from ORIGIN (e.g. https://dash.example or null); repeatable (default: own page only)",
    )
    p.add_argument("--media-dir", metavar="DIR", help="the one folder whose video files jobs may read")
    p.add_argument(
        "--jobs-dir",
        metavar="DIR",
        help="keep job results here across restarts (default: jobs/ in the --review folder, else a temporary folder)",
    )
    p.add_argument(
        "--engine",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="run the model on torch, or convert it to ONNX at start-up (about 20 s) and run it on "
        "onnxruntime: more crops/s, fewer whole frames/s on 2 cores (README; default: %(default)s)",
    )
    p.add_argument("--no-batching", action="store_true", help="one model call per request (no micro-batching)")
    p.add_argument("--max-batch", type=int, default=64, help="face crops per model call (default: %(default)s)")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="longest a request waits to share a model call (default: %(default)s)",
    )
    p.add_argument("--workers", type=int, default=2, help="threads that decode and detect (default: %(default)s)")
    p.add_argument(
        "--busy-detect-side",
        type=int,
        metavar="PIXELS",
        help="while images wait for detection, search frames shrunk to this longer side (about 2x the frames/s "
        "under load, the smallest faces missed; README); default: 320 with centerface, 0 = off (every frame at "
        "the detector's own size)",
    )
    p.add_argument(
        "--max-detect-queue",
        type=int,
        default=64,
        help="images waiting for a detection worker at most; beyond them 503 + Retry-After (default: %(default)s)",
    )
    p.add_argument(
        "--max-detect-wait-ms",
        type=float,
        default=300.0,
        help="and at most this much waiting, by the recent time per image (crop decoding is quick, whole frames "
        "are not); beyond it 503 + Retry-After (default: %(default)s)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests waiting for the model; beyond them 503 + Retry-After (default: %(default)s)",
    )
    p.add_argument("--max-upload-mb", type=float, default=16.0, help="largest image request (default: %(default)s)")
    p.add_argument("--max-clip-mb", type=float, default=512.0, help="largest uploaded clip (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..serve import require_extra

    require_extra()
    from ..serve.server import run as serve
    from ..serve.settings import ServeSettings

    settings = ServeSettings(
        model=args.model,
        min_confidence=args.min_confidence,
        host=args.host,
        port=args.port,
        token=args.token,
        review=args.review,
        review_max=args.review_max,
        review_per_request=args.review_per_request,
        allow_origins=tuple(args.allow_origin),
        workers=args.workers,
        busy_detect_side=args.busy_detect_side,
        max_detect_queue=args.max_detect_queue,
        max_detect_wait_ms=args.max_detect_wait_ms,
        max_queue=args.max_queue,
        media_dir=args.media_dir,
        jobs_dir=args.jobs_dir,
        detector=args.detector,
        device=args.device,
        engine=args.engine,
        batching=not args.no_batching,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_upload_mb=args.max_upload_mb,
        max_clip_mb=args.max_clip_mb,
    )
    check_port(settings.host, settings.port)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"resemotenet serve: open http://{shown}:{settings.port}/ (API docs at /docs)"
        + ("; token required" if settings.token else ""),
        flush=True,
    )
    serve(settings)
    return 0


def check_port(host: str, port: int) -> None:
    """Bind the address once before the model loads: a busy port is one line, not a model load
    and a printed URL followed by the server's own error. (Another program can still take the
    port in the seconds the model needs; the server then says so itself.)"""
    import errno
    import socket

    from ..utils.errors import ConfigError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no conflict
            s.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another server?): stop it, or choose another --port"
            ) from exc
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and --port") from exc
