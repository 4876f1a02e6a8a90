"""What the app refuses before any route runs, and how it answers when things go wrong.

- **Bodies have a size limit** (`NURTURE_MAX_BODY_BYTES`, 5 MiB by default):
  every route, forms and JSON alike, gets a 413 with the reason as soon as a
  body declares or reaches more, before it is read into memory. A link in an
  email (every recipient holds a pause token) can no longer make the server
  hold a 300 MB form.
- **Validation errors never echo the input.** FastAPI's default 422 carries
  each refused value back (`input`); a 54 MB reason field came back as 54 MB.
  Here each error keeps where and why, and at most a short excerpt.
- **Database trouble is a 503 in JSON with `Retry-After`**, not a plain-text
  500: the client knows to retry, and nothing it sent was half applied (a
  transaction that lost its connection is rolled back by the database).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nurture.errors import DatabaseUnavailable, ValueRefused

log = logging.getLogger("nurture.web")

#: Seconds a client is asked to wait after a 503 for a database blip.
RETRY_AFTER = 5


class BodyLimit:
    """ASGI middleware: a 413 for any request body over `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        size = 0
        started = False

        async def counted_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def counted_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted_receive, counted_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.limit} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:  # pragma: no cover - a JSONResponse never reads
    return {"type": "http.disconnect"}


def _short(value: Any, limit: int = 80) -> Any:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "msg": _short(error.get("msg", ""), 300),
            "type": error.get("type", ""),
        }
        for error in exc.errors()[:20]
    ]
    return JSONResponse({"detail": errors}, status_code=422)


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return JSONResponse(
        {"detail": "the database is unavailable for a moment; retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, but a 405 lists in `Allow` every method the path has: a path
    served by several routes (GET and POST of an unsubscribe page) named only the
    methods of the route that answered."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = {
            method
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if any(
                route.matches({**request.scope, "method": method})[0] == Match.FULL
                for route in request.app.router.routes
            )
        }
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


async def _value_refused(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


def install(app: FastAPI, max_body_bytes: int) -> None:
    """The body limit, and the error answers above, on `app`."""
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)
    app.add_exception_handler(ValueRefused, _value_refused)
