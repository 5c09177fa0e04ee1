"""Engine options for each DATABASE_URL form (direct, Neon direct, Neon pooled), the
connect retry that turns a restarting server into a short wait, not an error, the dead
connections the pool discards without a round trip, and autocommit for reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from backend.config import sqlalchemy_url
from backend.db import (
    CONNECT_ATTEMPTS,
    autocommit,
    connect_params,
    connection_is_dead,
    connector,
    create_engine,
)

NEON_DIRECT = (
    "postgresql://alex:AbC123dEf@ep-cool-darkness-123456.us-east-2.aws.neon.tech/dbname"
    "?sslmode=require&channel_binding=require"
)
NEON_POOLED = NEON_DIRECT.replace("ep-cool-darkness-123456", "ep-cool-darkness-123456-pooler")


def as_dict(conninfo: str) -> dict[str, Any]:
    return psycopg.conninfo.conninfo_to_dict(conninfo)


class TestConnectParams:
    def test_local(self) -> None:
        conninfo, options = connect_params(sqlalchemy_url("postgres://u:p@127.0.0.1:5432/app"))
        assert conninfo == "postgresql://u:p@127.0.0.1:5432/app"
        assert options == {"connect_timeout": 5}

    def test_neon_direct_keeps_tls_options(self) -> None:
        conninfo, options = connect_params(sqlalchemy_url(NEON_DIRECT))
        assert as_dict(conninfo) == as_dict(NEON_DIRECT)
        assert as_dict(conninfo)["channel_binding"] == "require"
        assert "prepare_threshold" not in options  # a direct host may prepare statements

    def test_neon_pooled_disables_prepared_statements(self) -> None:
        conninfo, options = connect_params(sqlalchemy_url(NEON_POOLED))
        assert as_dict(conninfo) == as_dict(NEON_POOLED)
        assert options["prepare_threshold"] is None

    def test_password_with_special_characters(self) -> None:
        url = "postgresql://u:p%40ss%2Fw@host/db"
        conninfo, _ = connect_params(sqlalchemy_url(url))
        assert as_dict(conninfo)["password"] == "p@ss/w"


class TestConnector:
    async def test_connects(self, migrated_database: str) -> None:
        connection = await connector(sqlalchemy_url(migrated_database))()
        async with connection:
            cursor = await connection.execute("select 1")
            assert await cursor.fetchone() == (1,)

    async def test_quick_failures_are_retried_then_raised(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        attempts: list[float] = []
        real_connect = psycopg.AsyncConnection.connect

        async def counting(*args: Any, **kwargs: Any) -> Any:
            attempts.append(time.monotonic())
            return await real_connect(*args, **kwargs)

        monkeypatch.setattr(psycopg.AsyncConnection, "connect", counting)
        with pytest.raises(psycopg.OperationalError):
            await connector("postgresql+psycopg://postgres@127.0.0.1:1/none")()
        assert len(attempts) == CONNECT_ATTEMPTS
        assert attempts[-1] - attempts[0] >= 0.1 + 0.3 - 0.05  # backed off between attempts

    async def test_engine_runs_queries(self, migrated_database: str) -> None:
        engine = create_engine(sqlalchemy_url(migrated_database))
        try:
            async with engine.connect() as connection:
                assert (await connection.execute(text("select 41 + 1"))).scalar() == 42
        finally:
            await engine.dispose()


async def terminate(database_url: str, pid: int) -> None:
    """What a server restart or a Neon compute suspend does to one connection."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        await admin.execute("select pg_terminate_backend(%s)", (pid,))


class TestDeadConnections:
    async def test_a_live_idle_connection_is_not_dead(self, migrated_database: str) -> None:
        async with await psycopg.AsyncConnection.connect(migrated_database) as connection:
            await connection.execute("select 1")
            await connection.rollback()
            assert not connection_is_dead(connection)

    async def test_a_terminated_connection_is_dead(self, migrated_database: str) -> None:
        async with await psycopg.AsyncConnection.connect(migrated_database) as connection:
            await terminate(migrated_database, connection.info.backend_pid)
            for _ in range(100):  # the termination notice crosses the socket asynchronously
                if connection_is_dead(connection):
                    break
                await asyncio.sleep(0.01)
            assert connection_is_dead(connection)

    async def test_a_closed_connection_is_dead(self, migrated_database: str) -> None:
        connection = await psycopg.AsyncConnection.connect(migrated_database)
        await connection.close()
        assert connection_is_dead(connection)

    async def test_the_pool_replaces_a_dead_connection_instead_of_failing(
        self, migrated_database: str
    ) -> None:
        engine = create_engine(sqlalchemy_url(migrated_database))
        pid = "select pg_backend_pid()"
        try:
            async with engine.connect() as connection:
                first = (await connection.execute(text(pid))).scalar_one()
            await terminate(migrated_database, first)
            await asyncio.sleep(
                0.2
            )  # let the notice arrive, as it would long before the next request
            async with engine.connect() as connection:
                second = (await connection.execute(text(pid))).scalar_one()
            assert second != first
        finally:
            await engine.dispose()


class TestAutocommitReads:
    async def test_reads_leave_no_transaction_open(self, migrated_database: str) -> None:
        """No BEGIN was sent: the connection is idle, not "in transaction", after a query."""
        engine = create_engine(sqlalchemy_url(migrated_database))
        try:
            async with autocommit(engine).connect() as connection:
                await connection.execute(text("select 1"))
                raw = await connection.get_raw_connection()
                driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
                assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            async with engine.connect() as connection:  # the shared pool is left transactional
                await connection.execute(text("select 1"))
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection  # type: ignore[assignment]
                assert driver.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        finally:
            await engine.dispose()
