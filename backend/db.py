"""The async engine and the per-request session (SessionDep).

Neon-aware: `sslmode`/`channel_binding` in the URL reach libpq untouched; on a pooled
(`-pooler`, PgBouncer in transaction mode) host, server-side prepared statements are off
because a transaction may land on another server connection than the one that prepared them.
"""

from __future__ import annotations

import asyncio
import select
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Protocol

import psycopg
from fastapi import Depends, Request
from sqlalchemy import Executable, MetaData, Result, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
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
        # No pool_pre_ping: its round trip is paid on every request and, under load, held
        # across a busy event loop. discard_dead_connections (below) costs no round trip.
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 5,  # a saturated database answers 503 fast, not a hang
        "pool_recycle": 300,  # below the idle timeouts of poolers and load balancers
    }


def connection_is_dead(connection: psycopg.AsyncConnection[Any]) -> bool:
    """True when an idle pooled connection can no longer be used, found without a round trip.

    An idle connection has nothing to read: the server only speaks when asked. When it goes
    away (a restart, a crash, Neon suspending its compute, a pooler closing the client) it
    sends a termination notice or just closes the socket, and either makes the socket
    readable. So "readable while idle" means "dead"; at worst we reconnect once for nothing.
    """
    if connection.closed:
        return True
    # poll, not select: a busy server holds more than select's 1,024 descriptors.
    poller = select.poll()
    try:
        poller.register(connection.pgconn.socket, select.POLLIN)
        return bool(poller.poll(0))  # readable, hung up or in error: all mean dead here
    except (OSError, psycopg.OperationalError):
        return True


def discard_dead_connections(engine: AsyncEngine) -> None:
    """On checkout, hand a dead connection back for a fresh one (the pool retries) instead
    of failing the request that drew it: after a database restart every request succeeds."""

    @event.listens_for(engine.sync_engine, "checkout")
    def check(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if connection_is_dead(dbapi_connection.driver_connection):
            raise DisconnectionError("the server closed this pooled connection")


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, **engine_options(url))
    discard_dead_connections(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit, for requests that only read: they skip BEGIN and COMMIT,
    two of their three round trips. Under READ COMMITTED each statement reads its own
    snapshot either way, so nothing a reader sees changes."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session, and the one place that commits: when the route returns without
    an exception. An exception rolls everything back, so a failed request writes nothing.
    Safe methods (which never write) run in autocommit on the same pool."""
    state = request.app.state
    sessionmaker: async_sessionmaker[AsyncSession] = (
        state.read_sessionmaker if request.method in SAFE_METHODS else state.sessionmaker
    )
    async with sessionmaker() as session:
        yield session
        if session.in_transaction():
            await session.commit()


# scope="function": commit before the response is sent, so a 2xx means the write is durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class Reader(Protocol):
    """What a lookup needs of a session: running a query."""

    async def execute(self, statement: Executable) -> Result[Any]: ...


class OnDemandSession:
    """A read session opened on first use, closed by `aclose`. The auth lookups are nearly
    always answered from their caches; creating (and closing) an AsyncSession for each request
    anyway cost more than the rest of the authentication."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._session: AsyncSession | None = None

    async def execute(self, statement: Executable) -> Result[Any]:
        if self._session is None:
            self._session = self._sessionmaker()
        return await self._session.execute(statement)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
