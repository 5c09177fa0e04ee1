"""The FastAPI application: `uvicorn backend.main:app`, or create_app() in tests."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend import health, users
from backend.auth import JWKSCache, TokenVerifier
from backend.auth.jwks import Clock
from backend.config import Settings
from backend.db import create_engine, create_sessionmaker
from backend.errors import install_error_handlers
from backend.logs import configure_logging
from backend.tasks import router as tasks


def create_app(settings: Settings | None = None, *, clock: Clock = time.time) -> FastAPI:
    """The app, wired from settings. `clock` is injectable so tests can freeze time."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        engine = create_engine(settings.database_url)
        # One client for the process; the JWKS cache sets its own timeout and no redirects.
        async with httpx.AsyncClient(headers={"User-Agent": "better-auth-fastapi"}) as http:
            jwks = JWKSCache(
                settings.jwks_url,
                client=http,
                allowed_algorithms=settings.auth_algorithms,
                ttl_s=settings.jwks_ttl_s,
                cooldown_s=settings.jwks_cooldown_s,
                stale_s=settings.jwks_stale_s,
                timeout_s=settings.jwks_timeout_s,
                clock=clock,
            )
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            app.state.jwks = jwks
            app.state.verifier = TokenVerifier(
                jwks,
                issuer=settings.issuer,
                audiences=settings.audiences,
                algorithms=settings.auth_algorithms,
                leeway_s=settings.auth_leeway_s,
                max_lifetime_s=settings.auth_max_token_lifetime_s,
                max_token_bytes=settings.auth_max_token_bytes,
                cache_size=settings.auth_token_cache_size,
                clock=clock,
            )
            app.state.users = users.UserDirectory(settings.auth_user_cache_ttl_s, clock)
            # Keys load in the background: the app serves /health even if the JWKS is down.
            warm_up = asyncio.create_task(jwks.warm_up())
            try:
                yield
            finally:
                warm_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm_up
                await jwks.aclose()
                await engine.dispose()

    app = FastAPI(
        title="Tasks API (Better Auth)",
        version="0.1.0",
        summary="A Python backend that verifies Better Auth JWTs.",
        lifespan=lifespan,
        # Starlette's limiter: a declared Content-Length over the cap is refused unread, a
        # streamed body is cut off at the cap; either way 413.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Location", "X-Total-Count"],
        allow_credentials=False,  # bearer tokens only; cookies never ride cross-origin
        max_age=600,
    )
    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(tasks.router)
    return app


app = create_app()
