"""What the fault tests share: a record of every call made while something was broken, a real
backend process (uvicorn) with a loopback JWKS, and a PostgreSQL crash.

Nothing here fakes the part under test: the backend is the real app in a real uvicorn, the
database a real PostgreSQL cluster the test owns (devtools.pgcluster.LocalCluster), tokens are
signed with real keys (IssuerStub) and the JWKS is served over real loopback HTTP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.pgcluster import LocalCluster
from devtools.servers import free_port, stop, wait_until_up

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP call made during a fault run, as the client saw it. Times are the event loop's
    clock (seconds). `status` 0: no HTTP answer at all (the connection broke, or the client gave
    up waiting): `error` says which."""

    kind: str
    started: float
    ended: float
    status: int
    retry_after: str | None = None
    title: str | None = None
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def overlaps(self, start: float, end: float) -> bool:
        """Was this call under way at some moment of [start, end]?"""
        return self.started <= end and self.ended >= start


def statuses(calls: Iterable[Call]) -> Counter[int]:
    return Counter(call.status for call in calls)


def worst_latency(calls: Iterable[Call]) -> float:
    return max((call.latency for call in calls), default=0.0)


# -- the backend in a real uvicorn ----------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"(no backend log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def uvicorn_backend(
    env: dict[str, str], log: Path, ready_timeout_s: float = 30.0
) -> Iterator[Backend]:
    """`uvicorn backend.main:app`, one worker, as production runs it (minus the container),
    with `env` on top of ours. Yields once GET /ready answers 200 (database and keys); stops it
    with SIGTERM (a graceful shutdown) on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "backend.main:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--no-access-log", "--timeout-graceful-shutdown", "5",
    ]  # fmt: skip
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=output
        )
    backend = Backend(url=f"http://127.0.0.1:{port}", log=log, process=process)
    try:
        wait_until_up(f"{backend.url}/ready", process, timeout_s=ready_timeout_s, log=log)
        yield backend
    finally:
        stop(process)


# -- a PostgreSQL crash ---------------------------------------------------------------------
def postmaster_pid(cluster: LocalCluster) -> int:
    """The pid of the cluster's running postmaster, from its own lock file."""
    return int((cluster.pgdata / "postmaster.pid").read_text().split()[0])


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process; None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """Running, or at least not dead yet: a zombie ("Z") is dead, only not reaped."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[1] == pid and stat[0] != "Z":
            children.append(int(entry.name))
    return children


def crash(cluster: LocalCluster, timeout_s: float = 10.0) -> int:
    """Kill the whole server at once, as the OOM killer or a power cut would: SIGKILL to the
    postmaster and every process it started (checkpointer, WAL writer, backends...), so none
    gets to shut down, flush or say goodbye, and the next start replays the WAL (crash
    recovery). Returns how many processes were killed.

    Every child of the postmaster makes itself a process-group leader (setsid), so there is no
    one group to kill: the postmaster is frozen first (SIGSTOP: it forks no new backend), then
    its children are listed and everything is killed. We check the postmaster is our cluster's
    before signalling anything."""
    pid = postmaster_pid(cluster)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    if not _alive(pid) or str(cluster.pgdata) not in cmdline:
        raise RuntimeError(f"pid {pid} is not our cluster's postmaster")
    os.kill(pid, signal.SIGSTOP)
    victims = [*_children(pid), pid]
    for victim in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while any(_alive(victim) for victim in victims):
        if time.monotonic() > deadline:
            raise RuntimeError(f"server processes {victims} outlived SIGKILL")
        time.sleep(0.01)
    # The dead postmaster's lock file is left behind (nothing ran its exit hooks). A dead
    # process stays a zombie until its parent reaps it, and the postmaster's parent is the
    # machine's init, which may do that late or never (containers): while it is a zombie,
    # kill(pid, 0) succeeds and the next postmaster would refuse to start ("lock file already
    # exists"). Every process of that server is dead (checked just above), so the file is
    # stale: remove it, as an operator would.
    with contextlib.suppress(FileNotFoundError):
        (cluster.pgdata / "postmaster.pid").unlink()
    return len(victims)
