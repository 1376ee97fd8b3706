"""``rnnkit serve RUN [--host 127.0.0.1] [--port 8000] [--token T]``: answer over HTTP.

The service itself is ``rnnkit/serving``; this module only reads the command line. FastAPI
and uvicorn load inside the command, so ``rnnkit --help`` works without the serve extra.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

EXAMPLE = ("RNNKIT_SERVE_TOKEN=s3cret rnnkit serve runs/sun --port 8000\n"
           "         curl -s localhost:8000/forecast -H 'Authorization: Bearer s3cret' "
           "-d '{\"steps\": 12}'")


def add_serve(sub: Any, command: Any) -> None:
    """Register ``rnnkit serve``; ``command`` makes a subparser the way main.py does."""
    c = command(sub, "serve", "Answer forecasts of a saved run over HTTP, as JSON: GET /health"
                ", GET /model, POST /forecast, /predict, /update (needs the serve extra: pip "
                "install 'rnnkit[serve]'); see docs/deploy.md.")
    c.add_argument("run")
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    c.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000)")
    c.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every endpoint "
                   "but /health (default: $RNNKIT_SERVE_TOKEN, which keeps it out of ps)")
    c.add_argument("--threads", type=_threads, default=1, help="torch CPU threads (default 1)")
    c.add_argument("--save-every", type=_seconds, default=10.0, metavar="S", help="write the "
                   "tracked series (RUN/serve_state.json) at most every S seconds while "
                   "updates arrive, and on shutdown (default 10)")
    c.add_argument("--quiet", action="store_true", help="log warnings only, no access log")
    c.set_defaults(func=cmd_serve)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def _threads(text: str) -> int:
    return int(_bounded(text, int, 1, "a thread count (1 or more)"))


def _seconds(text: str) -> float:
    return _bounded(text, float, 0, "a number of seconds (0 or more)")


def _bounded(text: str, kind: type, low: float, what: str) -> float:
    """``text`` read as ``kind``, at least ``low`` (NaN refused), or argparse's error."""
    try:
        value = kind(text)
    except ValueError:
        value = low - 1
    if not value >= low:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from rnnkit.errors import ConfigError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError("serve needs fastapi and uvicorn: pip install 'rnnkit[serve]'."
                          ) from None
    from rnnkit.serving import TOKEN_ENV, serve

    token = args.token or os.environ.get(TOKEN_ENV) or None
    # Ctrl-C (SIGINT) and SIGTERM both shut down gracefully, writing the tracked series;
    # uvicorn then returns after a Ctrl-C (exit 0) and re-raises a SIGTERM (status 143)
    serve(args.run, host=args.host, port=args.port, token=token, threads=args.threads,
          save_every=args.save_every, quiet=args.quiet)
    return 0
