"""What the benchmarks share: a throwaway database and a loopback JWKS server that counts
(and attributes) its fetches."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devtools.pgcluster import postgres_server, temporary_database


@contextmanager
def database() -> Iterator[str]:
    """A fresh database on TEST_DATABASE_URL's server, or in a throwaway cluster."""
    with postgres_server() as server, temporary_database(server, "bench") as url:
        yield url


@dataclass(frozen=True)
class JWKSFetch:
    at: float  # time.monotonic() when the request arrived
    pid: int | None  # the process whose socket sent it; None when /proc could not tell


@dataclass
class JWKSServer:
    url: str
    fetches: list[JWKSFetch] = field(default_factory=list)

    def count(self, since: float = 0.0, pids: Collection[int | None] | None = None) -> int:
        """Fetches that arrived at or after `since` (a monotonic time), from `pids` if given
        (None in `pids`: the fetches no process could be found for)."""
        return sum(1 for f in self.fetches if f.at >= since and (pids is None or f.pid in pids))


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 loopback socket 127.0.0.1:local_port -> :remote_port."""
    with Path("/proc/net/tcp").open() as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (
                int(local.split(":")[1], 16) == local_port
                and int(remote.split(":")[1], 16) == remote_port
            ):
                return inode
    return None


def _socket_owner(inode: str) -> int | None:
    """The pid holding socket `inode` open (this machine's processes, as far as we may look)."""
    target = f"socket:[{inode}]"
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                if os.readlink(fd.path) == target:
                    return int(entry.name)
        except OSError:  # gone, or not ours to look at
            continue
    return None


@contextmanager
def serve_jwks(document: dict[str, Any]) -> Iterator[JWKSServer]:
    """A real loopback server (PyJWKClient fetches with urllib; the backend with httpx).

    Every GET is recorded with the pid of the process that sent it, found while the request is
    being answered (its connection is open then): the client's port names its socket in
    /proc/net/tcp, the socket's inode names the process holding it. Linux only; elsewhere the
    pid is None and only the counts are known."""
    body = json.dumps(document).encode()
    fetches: list[JWKSFetch] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            at = time.monotonic()
            pid: int | None = None
            try:
                inode = _socket_inode(self.client_address[1], self.connection.getsockname()[1])
                pid = _socket_owner(inode) if inode is not None else None
            except OSError:
                pass
            fetches.append(JWKSFetch(at, pid))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield JWKSServer(f"http://127.0.0.1:{server.server_address[1]}/api/auth/jwks", fetches)
    finally:
        server.shutdown()
        server.server_close()
