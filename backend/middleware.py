"""Per-request context: a request id, one access log line, and the HTTP metrics.

A plain ASGI middleware (no BaseHTTPMiddleware: no extra task, no body buffering), outermost,
so it sees every response, CORS preflights and 413s included:
- the request id is the caller's `X-Request-ID` when it is a sane value (1-64 characters of
  letters, digits and `._:-`), else a new random one; it goes back in the response's
  `X-Request-ID` and into every log record of the request (backend.logs.request_id_var);
- the access log line (logger `backend.access`) has the method, the route template, the
  status, the duration and the request id. Never the raw path, the query string or a header:
  they can carry tokens, emails or ids.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.logs import request_id_var
from backend.metrics import METHODS, UNMATCHED, Metrics

access_log = logging.getLogger("backend.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    """128 random bits as 32 hex digits (the shape of a W3C trace id)."""
    return os.urandom(16).hex()


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (`/api/{user_id}/tasks`), or `unmatched`."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope["headers"]) or new_request_id()
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # if the app raises before answering, the server answers 500
        context = request_id_var.set(request_id)

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = route_template(scope)
            self.metrics.observe_request(method, route, status, seconds)
            access_log.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %d %.1fms",
                method,
                route,
                status,
                seconds * 1000,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(context)
