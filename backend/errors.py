"""One error tree and one place that turns errors into responses.

Token failures all get the same body (the precise reason is logged, never the token), and an
unreachable key set is a 503 with Retry-After: an outage must not sign anybody out.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.auth import JWKSUnavailable, Reason, TokenError

log = logging.getLogger("backend.errors")

MISSING_CREDENTIALS = "Not authenticated: send Authorization: Bearer <token from Better Auth>"
INVALID_TOKEN = "Invalid or expired token"  # noqa: S105 (a message, not a secret)


class ErrorBody(BaseModel):
    detail: str


# For OpenAPI (and the TypeScript types generated from it): what any authenticated route
# may answer besides its own success.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (WWW-Authenticate)"},
    503: {"model": ErrorBody, "description": "Keys or database unreachable (Retry-After)"},
}
BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Request body larger than MAX_BODY_BYTES"},
}
NOT_FOUND_RESPONSE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such task for this user (or another user's)"},
}


class AppError(Exception):
    status_code = 500
    detail = "Internal error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None):
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.headers = headers or {}


class Forbidden(AppError):
    status_code = 403
    detail = "Forbidden"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


def unauthorized(error: TokenError) -> JSONResponse:
    if error.reason is Reason.MISSING:
        return JSONResponse(
            {"detail": MISSING_CREDENTIALS}, 401, headers={"WWW-Authenticate": "Bearer"}
        )
    return JSONResponse(
        {"detail": INVALID_TOKEN},
        401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def _token_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TokenError)
    log.info(
        "token refused: %s",
        exc.reason.value,
        extra={"reason": exc.reason.value, "detail": exc.detail, "path": request.url.path},
    )
    return unauthorized(exc)


async def _jwks_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JWKSUnavailable)
    log.warning("auth unavailable: %s", exc.detail, extra={"path": request.url.path})
    return JSONResponse(
        {"detail": "Authentication is temporarily unavailable, try again shortly"},
        503,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A connection refused, a pool exhausted or a server restarting: not the caller's fault.
    log.warning("database unavailable: %s", type(exc).__name__, extra={"path": request.url.path})
    return JSONResponse(
        {"detail": "Database unavailable, try again shortly"}, 503, headers={"Retry-After": "2"}
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        # FastAPI answers 400 to a JSON body that is no UTF-8 (and 422 to one that is no
        # JSON): bad input either way, so the same 422 in FastAPI's validation format.
        error = {
            "type": "json_invalid",
            "loc": ("body", cause.start),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": "invalid UTF-8"},
        }
        return await _validation_error(request, RequestValidationError([error]))
    return await http_exception_handler(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    # FastAPI's 422, but JSON-encoded with ASCII escapes: the errors echo the input, and a
    # lone surrogate in it (JSON allows "\ud800") cannot be encoded as UTF-8: a 500 otherwise.
    assert isinstance(exc, RequestValidationError)
    body = json.dumps({"detail": jsonable_encoder(exc.errors())})
    return Response(body, 422, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(TokenError, _token_error)
    app.add_exception_handler(JWKSUnavailable, _jwks_unavailable)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
