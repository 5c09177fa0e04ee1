"""One error tree and one place that turns errors into responses.

Token failures all get the same body (the precise reason is logged, never the token), and an
unreachable key set is a 503 with Retry-After: an outage must not sign anybody out.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TokenError, _token_error)
    app.add_exception_handler(JWKSUnavailable, _jwks_unavailable)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
