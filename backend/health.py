"""Liveness and readiness, for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend.auth import JWKSCache

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up. Touches nothing, so it answers even when everything else is down."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Database or signing keys missing"}})
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers and the signing keys are loaded; 503 saying what is not."""
    jwks: JWKSCache = request.app.state.jwks
    checks = {"database": await _database_check(request)}
    checks["signing_keys"] = (
        "ok" if jwks.loaded else f"not loaded: {jwks.last_error or 'first fetch pending'}"
    )
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ok else "unavailable", **checks}, 200 if ok else 503)


async def _database_check(request: Request) -> str:
    try:
        async with asyncio.timeout(2):
            async with request.app.state.engine.connect() as connection:
                await connection.execute(text("select 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok"
