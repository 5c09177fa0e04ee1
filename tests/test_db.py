"""Engine options for each DATABASE_URL form (direct, Neon direct, Neon pooled), and the
connect retry that turns a restarting server into a short wait, not an error."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from backend.config import sqlalchemy_url
from backend.db import CONNECT_ATTEMPTS, connect_params, connector, create_engine

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
