"""``rnnkit serve``: a saved run answering forecasts over HTTP, as JSON (FastAPI, uvicorn).

    GET  /health    {"status": "ok"}                      (never needs the token)
    GET  /model     the run's config, metrics, interval levels and history needs
    POST /forecast  {"steps": N} | {"history": [...], "steps": N} | {"series": id, "steps": N}
    POST /predict   {"history": [...]} | {"series": id}   one-step predictions
    POST /update    {"series": id, "values": [...]}       advance a tracked series
                    (+ "future": {"promo": [...]} for a run with future features)

From Python: ``create_app(run_or_path, token=None)`` returns the app (to mount or test), and
``serve(run_path, host, port, token)`` runs it. Needs the serve extra:
``pip install 'rnnkit[serve]'``. What each request may hold: ``rnnkit.serving.inputs``; the
tracked series and their state file: ``rnnkit.serving.state``.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path
from typing import Any

from rnnkit.errors import ConfigError
from rnnkit.runs import Run, load
from rnnkit.serving.app import build
from rnnkit.serving.inputs import MAX_BODY
from rnnkit.serving.service import LOG, Service
from rnnkit.serving.state import STATE_FILE

SAVE_EVERY = 10.0  # seconds between writes of the tracked series while updates arrive
TOKEN_ENV = "RNNKIT_SERVE_TOKEN"


def create_app(run_or_path: Run | str | Path, token: str | None = None, *,
               save_every: float | None = SAVE_EVERY, max_body: int = MAX_BODY) -> Any:
    """The FastAPI app answering for a run.

    Args:
        run_or_path: a run folder (its tracked series are kept in ``RUN/serve_state.json``,
            loaded now and written on shutdown) or a ``Run`` (tracked series in memory only).
        token: when set, every endpoint but /health needs ``Authorization: Bearer <token>``.
        save_every: also write the tracked series when this many seconds have passed since
            the last write, at the next /update (None: only on shutdown; 0: every update).
        max_body: the largest request body, in bytes (413 beyond).
    """
    if isinstance(run_or_path, Run):
        run, state_path = run_or_path, None
    else:
        run, state_path = load(run_or_path), Path(run_or_path) / STATE_FILE
    if run.kind not in ("series", "panel"):
        raise ConfigError(f"serve answers series and panel runs; this is a {run.kind} run "
                          "(continue its sequences with Run.generate in Python).")
    if save_every is not None and save_every < 0:
        raise ConfigError(f"save_every={save_every} must be 0 or more seconds (or None).")
    return build(Service(run, state_path, save_every), token or None, max_body)


def serve(run_path: str | Path, host: str = "127.0.0.1", port: int = 8000,
          token: str | None = None, *, threads: int = 1, save_every: float | None = SAVE_EVERY,
          quiet: bool = False) -> None:
    """Answer for the run at ``run_path`` on ``host:port`` until SIGINT or SIGTERM, then write
    the tracked series. ``threads``: torch's CPU threads, set once here (one suits a small
    model: requests are answered one model call at a time)."""
    import torch
    import uvicorn

    if threads < 1:
        raise ConfigError(f"threads={threads} must be at least 1.")
    _log_to_stderr(logging.WARNING if quiet else logging.INFO)
    torch.set_num_threads(threads)
    app = create_app(run_path, token, save_every=save_every)
    if not token and not _loopback(host):
        LOG.warning(f"listening on {host} without a token: anyone who reaches the port can "
                    f"use the model; set {TOKEN_ENV} or pass --token.")
    LOG.info(f"{run_path} on http://{host}:{port} ({'token required' if token else 'no token'}"
             f", {threads} thread{'s' if threads > 1 else ''})")
    uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info",
                access_log=not quiet, server_header=False, timeout_graceful_shutdown=10)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _log_to_stderr(level: int) -> None:
    if not LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rnnkit serve: %(message)s"))
        LOG.addHandler(handler)
    LOG.setLevel(level)
    LOG.propagate = False


__all__ = ["SAVE_EVERY", "TOKEN_ENV", "create_app", "serve"]
