"""The FastAPI application: `uvicorn backend.main:app`, or create_app() in tests.

Shutdown: on SIGTERM uvicorn stops accepting connections, lets in-flight requests finish (for
at most `--timeout-graceful-shutdown` seconds; the Dockerfile gives 20), then runs the
lifespan's exit below: the JWKS fetch is cancelled, the HTTP client closed, the pool disposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from backend import health, metrics, users
from backend.admission import AdmissionMiddleware
from backend.auth import JWKSCache, TokenError
from backend.auth.jwks import Clock
from backend.config import Settings
from backend.db import autocommit, create_engine, create_sessionmaker
from backend.errors import install_error_handlers
from backend.freshness import keep_fresh
from backend.logs import configure_logging
from backend.metrics import MeteredVerifier, Metrics
from backend.middleware import RequestContextMiddleware
from backend.sessions import SessionDirectory
from backend.tasks import router as tasks
from backend.verifier import build_verifier


class App(FastAPI):
    """FastAPI, with the request context (request id, access log, metrics) OUTSIDE every other
    middleware, Starlette's own included: so it also sees the 413 the body limit answers by
    itself and the 500 the server-error middleware sends, and stamps them all. Admission sits
    right inside it, so a request's logged duration includes its wait for a slot."""

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        admitted = AdmissionMiddleware(
            super().build_middleware_stack(), settings.max_concurrent_requests
        )
        return RequestContextMiddleware(admitted, self.state.metrics)


def create_app(settings: Settings | None = None, *, clock: Clock = time.time) -> FastAPI:
    """The app, wired from settings. `clock` is injectable so tests can freeze time."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        engine = create_engine(settings.database_url)
        # One client for the process; the JWKS cache sets its own timeout and no redirects.
        async with httpx.AsyncClient(headers={"User-Agent": "better-auth-fastapi"}) as http:
            jwks, verifier = build_verifier(settings, http, clock, JWKSCache, MeteredVerifier)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            app.state.read_sessionmaker = create_sessionmaker(autocommit(engine))
            app.state.jwks = jwks
            app.state.verifier = verifier
            app.state.users = users.UserDirectory(settings.auth_user_cache_ttl_s, clock)
            app.state.sessions = SessionDirectory(settings.auth_session_cache_ttl_s, clock)
            app.state.metrics.bind(verifier, jwks)
            # Keys load in the background: the app serves /health even if the JWKS is down.
            warm_up = asyncio.create_task(jwks.warm_up())
            # Sessions and users in use are re-read in bulk twice per session TTL, so requests
            # find them fresh (backend/freshness.py); with caching off there is nothing to keep.
            ttls = [settings.auth_session_cache_ttl_s, settings.auth_user_cache_ttl_s]
            cached = [ttl for ttl in ttls if ttl > 0]
            directories = [app.state.sessions, app.state.users]
            refresher = app.state.refresher = (
                asyncio.create_task(
                    keep_fresh(app.state.read_sessionmaker, directories, min(cached) / 2)
                )
                if cached
                else None
            )
            try:
                yield
            finally:
                for task in (warm_up, refresher):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                app.state.metrics.bind(None, None)
                await jwks.aclose()
                await engine.dispose()

    app = App(
        title="Tasks API (Better Auth)",
        version="0.1.0",
        summary="A Python backend that verifies Better Auth JWTs.",
        lifespan=lifespan,
        # Starlette's limiter: a declared Content-Length over the cap is refused unread, a
        # streamed body is cut off at the cap; either way 413.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    if (token_handler := app.exception_handlers.get(TokenError)) is not None:
        app.add_exception_handler(TokenError, app.state.metrics.count_refusals(token_handler))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Location", "X-Total-Count", "X-Request-ID"],
        allow_credentials=False,  # bearer tokens only; cookies never ride cross-origin
        max_age=600,
    )
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(users.router)
    app.include_router(tasks.router)
    return app


app = create_app()
