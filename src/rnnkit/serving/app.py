"""The HTTP face of a ``Service``: routes, the token, size limits, and errors as one line.

Every answer is JSON. A refusal is ``{"error": "<one line>"}`` with a 4xx status (400 not
JSON, 401 token, 404 unknown path or series, 405 method, 413 body too large, 422 a request
the run cannot answer as sent); anything unexpected is a 500 with one line and no traceback
(the server log has the rest). The token and the declared body size are checked before any
handler runs; the body is read at most ``max_body`` bytes far, whatever length it declared.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from rnnkit.errors import RnnkitError
from rnnkit.serving.inputs import MAX_BODY, TooLarge, dumps, parse_body, status_of
from rnnkit.serving.service import FIELDS, LOG, Service

ENDPOINTS = "GET /health, GET /model, POST /forecast, POST /predict, POST /update"


def reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type="application/json",
                    headers=headers)


def refuse(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return reply(status, {"error": " ".join(str(message).split())}, headers)


class Guard:
    """ASGI middleware: refuses a missing or wrong token (401; every path but /health, and
    unknown paths too, so they reveal nothing) and a declared body over ``max_body`` (413)."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int) -> None:
        self.app, self.max_body = app, max_body
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        headers = dict(scope.get("headers") or [])
        if self.token is not None and scope.get("path") != "/health":
            given = headers.get(b"authorization")
            scheme, _, value = (given or b"").partition(b" ")
            # compare_digest: the time taken says nothing about how much of the token matched
            if not (scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(),
                                                                         self.token)):
                what = "missing" if given is None else "wrong"
                return refuse(401, f"{what} token; send the header Authorization: Bearer "
                              "<token> (the token the server was started with).",
                              {"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length")
        if length is not None and not length.strip().isdigit():
            return refuse(400, f"Content-Length {length[:20]!r} is not a number.")
        if length is not None and int(length) > self.max_body:
            return refuse(413, too_large(self.max_body).args[0])
        return None


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"request body over {limit:,} bytes; send only the recent history the run "
                    "needs (GET /model: history_rows), or the values in several requests.")


async def read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def answer(service: Service, work: Callable[[dict], dict], request: Request | None,
                 fields: tuple[str, ...] = (), limit: int = MAX_BODY) -> Response:
    """Run ``work`` on the checked body in a worker thread; every failure becomes one line."""
    try:
        raw = await read_body(request, limit) if request else b"{}"
        # parsed in the worker thread too: a large body must not hold up the event loop
        return reply(200, await run_in_threadpool(
            lambda: service.call(work, parse_body(raw, fields))))
    except RnnkitError as exc:
        return refuse(status_of(exc), str(exc))
    except Exception as exc:  # a bug: one line for the client, the traceback for the log
        LOG.error(f"internal error on {request.url.path if request else '/model'}: "
                  f"{type(exc).__name__}: {exc}", exc_info=bool(os.environ.get("RNNKIT_DEBUG")))
        first = (str(exc).splitlines() or [""])[0][:200]
        return refuse(500, f"internal error: {type(exc).__name__}: {first} (see the server "
                      "log; set RNNKIT_DEBUG=1 for the traceback).")


def route(service: Service, name: str, max_body: int) -> Callable[[Request], Any]:
    """The POST endpoint that answers with ``service.<name>``."""
    work, fields = getattr(service, name), FIELDS[name]

    async def endpoint(request: Request) -> Response:
        return await answer(service, work, request, fields, max_body)

    return endpoint


def build(service: Service, token: str | None, max_body: int = MAX_BODY) -> FastAPI:
    """The FastAPI app of ``service``: no interactive docs (the endpoints are few, and the
    docs pages would fetch scripts from a CDN)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()  # after the last request: write the tracked series

    app = FastAPI(title="rnnkit", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.get("/health")
    async def health() -> Response:
        return reply(200, {"status": "ok"})

    @app.get("/model")
    async def model() -> Response:
        return await answer(service, service.model_info, None)

    for name in ("forecast", "predict", "update"):
        app.add_api_route(f"/{name}", route(service, name, max_body), methods=["POST"],
                          name=name)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return refuse(404, f"no endpoint {request.method} {request.url.path}; the "
                          f"endpoints are {ENDPOINTS}.")
        if exc.status_code == 405:
            return refuse(405, f"{request.method} is not allowed on {request.url.path}; the "
                          f"endpoints are {ENDPOINTS}.")
        return refuse(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        LOG.error(f"internal error on {request.url.path}: {type(exc).__name__}: {exc}")
        return refuse(500, f"internal error: {type(exc).__name__} (see the server log).")

    app.add_middleware(Guard, token=token, max_body=max_body)
    return app
