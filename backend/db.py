"""The async engine and the per-request session (SessionDep).

Neon-aware: `sslmode`/`channel_binding` in the URL reach libpq untouched; on a pooled
(`-pooler`, PgBouncer in transaction mode) host, server-side prepared statements are off
because a transaction may land on another server connection than the one that prepared them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# One MetaData for every table we touch, Better Auth's included (so foreign keys to "user"
# resolve); Alembic only ever migrates the tables the backend owns (see migrations/env.py).
metadata = MetaData(
    naming_convention={
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "pk": "%(table_name)s_pkey",
    }
)


CONNECT_ATTEMPTS = 3


def connect_params(url: str) -> tuple[str, dict[str, Any]]:
    """libpq conninfo and psycopg options for a SQLAlchemy URL. Query options such as
    `sslmode=require&channel_binding=require` stay in the conninfo, untouched."""
    parsed = make_url(url)
    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    options: dict[str, Any] = {"connect_timeout": 5}
    if "-pooler" in (parsed.host or ""):
        # PgBouncer in transaction mode: a prepared statement may not exist on the server
        # connection the next transaction lands on.
        options["prepare_threshold"] = None
    return conninfo, options


def connector(url: str) -> Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]:
    """Connect, retrying quick failures (a server restarting, a serverless compute waking)
    with a short backoff. A slow failure is not retried: a database that is down must turn
    into a 503 fast, not a hang."""
    conninfo, options = connect_params(url)

    async def connect() -> psycopg.AsyncConnection[Any]:
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                return await psycopg.AsyncConnection.connect(conninfo, **options)
            except psycopg.OperationalError:
                if attempt == CONNECT_ATTEMPTS or time.monotonic() - started > 1.0:
                    raise
                await asyncio.sleep(0.1 * 3 ** (attempt - 1))
        raise AssertionError("unreachable")

    return connect


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for create_async_engine."""
    return {
        "async_creator": connector(url),
        "pool_pre_ping": True,  # Neon suspends idle computes; drop dead connections quietly
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 5,  # a saturated database answers 503 fast, not a hang
        "pool_recycle": 300,
    }


def create_engine(url: str) -> AsyncEngine:
    return create_async_engine(url, **engine_options(url))


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, and the one place that commits: when the route returns without
    an exception. An exception rolls everything back, so a failed request writes nothing."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session
        if session.in_transaction():
            await session.commit()


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
