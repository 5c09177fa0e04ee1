"""Shared fixtures: a real PostgreSQL (fresh database per run) with Better Auth's own schema,
a frozen clock, an issuer stub whose JWKS respx serves, and the app under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import respx
from fastapi import FastAPI

from backend.auth.testing import IssuerStub
from backend.config import Settings
from backend.main import create_app
from devtools.migrate import migrate_backend, migrate_better_auth

pytest_plugins = ["tests.support.database"]

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_URL = "http://localhost:3000"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: they are the slowest, and the quick suites should speak first."""
    items.sort(key=lambda item: "/e2e/" in str(item.path))


class FrozenClock:
    """Stands still until told to move: token lifetimes and cache TTLs without sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def better_auth_database(database_url: str) -> str:
    """The run's database, with Better Auth's tables created by Better Auth's own migration."""
    if not (ROOT / "frontend" / "node_modules" / "better-auth").is_dir():
        pytest.fail("better-auth is not installed: run `make test` (it runs npm ci) first")
    migrate_better_auth(database_url)
    return database_url


@pytest.fixture(scope="session")
def migrated_database(better_auth_database: str) -> str:
    """Better Auth's migration, then ours (Alembic): the schema the app runs on."""
    migrate_backend(better_auth_database)
    return better_auth_database


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def issuer(clock: FrozenClock) -> IssuerStub:
    return IssuerStub(base_url=PUBLIC_URL, clock=clock)


@pytest.fixture
def jwks_mock() -> Iterator[respx.Router]:
    """respx on every outgoing httpx call: only routes a test declares answer; any other
    request (a jku URL, say) fails the test."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def jwks_route(issuer: IssuerStub, jwks_mock: respx.Router) -> respx.Route:
    return issuer.mock(jwks_mock)


@pytest.fixture
def settings(migrated_database: str) -> Settings:
    """The app's settings for tests. The issuer stub's tokens carry no `sid`, so session checks
    are off here; tests/test_sessions.py turns them on (with real session rows)."""
    return Settings(
        _env_file=None,
        database_url=migrated_database,
        better_auth_url=PUBLIC_URL,
        log_format="text",
        auth_require_session=False,
    )


async def started(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


async def settle(app: FastAPI) -> None:
    """Let background work (the JWKS warm-up, a refresh ahead) finish."""
    for _ in range(500):
        jwks = app.state.jwks
        if jwks._inflight is None and (jwks.fetch_count or jwks.last_error):
            return
        await asyncio.sleep(0.002)


@pytest.fixture
async def app(
    settings: Settings, clock: FrozenClock, jwks_route: respx.Route
) -> AsyncIterator[FastAPI]:
    """The app, started, with its JWKS warm-up done against the issuer stub."""
    application = create_app(settings, clock=clock)
    async for running in started(application):
        await settle(running)
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def insert_user(database_url: str, row: dict[str, Any]) -> None:
    """Seed a row of Better Auth's "user" table (the backend itself never writes it)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            'insert into "user" (id, name, email, "emailVerified", image, "createdAt",'
            ' "updatedAt") values (%s, %s, %s, %s, %s, now(), now())',
            (row["id"], row["name"], row["email"], row["emailVerified"], row["image"]),
        )


def delete_user(database_url: str, user_id: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute('delete from "user" where id = %s', (user_id,))


@pytest.fixture
def user(issuer: IssuerStub, better_auth_database: str) -> dict[str, Any]:
    """A signed-up user: a row in Better Auth's "user" table."""
    row = issuer.user()
    insert_user(better_auth_database, row)
    return row


@pytest.fixture
def token(issuer: IssuerStub, user: dict[str, Any]) -> str:
    """A valid Better Auth token for `user`."""
    return issuer.mint(user)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
