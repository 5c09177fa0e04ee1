"""Logging set-up: JSON lines for machines (default) or plain text for a terminal.

Fields passed with `extra=` land in the JSON object, so a token refusal logs its reason as a
field. Every record logged while a request is being served carries that request's id
(`request_id`, set by backend.middleware through a context variable, added by a filter on our
handler). Nothing here ever sees a token: callers log reasons, never credentials, and the
access log names the route template, never the raw path, query string or headers.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

# Record attributes that are not fields: the standard ones, and uvicorn's ANSI-coloured copy of
# its message.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}

# The id of the request being served in this context (None outside a request).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record that passes through (unless the caller set one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "request_id" not in record.__dict__:
            record.request_id = request_id_var.get()
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (k, v)
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not (k == "request_id" and v is None)
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:  # orjson: a few times faster than json, and this runs for every request
            return orjson.dumps(entry, default=str).decode()
        except (TypeError, orjson.JSONEncodeError):  # e.g. a non-string key in an extra
            return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message [request id]`, for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = record.__dict__.get("request_id")
        return f"{line} [{request_id}]" if request_id else line


def configure_logging(level: str, fmt: str) -> None:
    """Our loggers ("backend.*") write to stderr in `fmt`, each record tagged with the current
    request id. In JSON mode uvicorn's own lines (start-up, shutdown, errors) go through the
    same handler, so the process prints nothing but JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger("backend")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if fmt == "json":
        # uvicorn.error propagates to "uvicorn"; uvicorn.access is off (--no-access-log): our
        # access log (backend.access) replaces it, because uvicorn's prints query strings.
        logging.getLogger("uvicorn").handlers[:] = [handler]
