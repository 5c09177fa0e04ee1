"""HTTP throughput and latency: what the auth dependency costs on a real route.

One uvicorn worker serves the app; wrk (Debian's package), a separate process, loads it over
loopback. Three runs, same data, same machine:
- GET /health                          (no database, no auth: the ceiling)
- GET /api/me/tasks, auth replaced by a fixed user   (the no-auth baseline)
- GET /api/me/tasks with a bearer token, 1,000 users with distinct tokens, chosen at random
  per request (so the verified-token and user caches are exercised honestly)
and a 1,000-connection run of the authenticated route that must finish with zero errors.

Run: `make bench` (or `uv run python -m bench.http`). Needs `wrk` on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from backend.auth.testing import IssuerStub
from bench.common import database, serve_jwks
from bench.results import record, target
from devtools.migrate import migrate
from devtools.pgcluster import libpq_url

ROOT = Path(__file__).resolve().parent.parent
USERS = 1_000
TASKS_PER_USER = 20
AUTH_MIN_RATIO = 0.9  # authenticated route vs the same route without auth (DESIGN.md)

LUA = """
local tokens = {%s}
math.randomseed(42)
request = function()
  local token = tokens[math.random(#tokens)]
  return wrk.format("GET", "%s", {["Authorization"] = "Bearer " .. token})
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_id(user: dict[str, Any]) -> str:
    """The id of the user's session row: the `sid` its token carries (AUTH_REQUIRE_SESSION)."""
    return f"session-{user['id']}"


def seed(url: str, users: list[dict[str, Any]]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        with conn.cursor() as cursor:
            cursor.executemany(
                'insert into "user" (id, name, email, "emailVerified") values (%s, %s, %s, false)',
                [(u["id"], u["name"], u["email"]) for u in users],
            )
            cursor.executemany(
                'insert into "session" (id, token, "userId", "expiresAt", "updatedAt")'
                " values (%s, %s, %s, now() + interval '1 day', now())",
                [(session_id(u), secrets.token_urlsafe(24), u["id"]) for u in users],
            )
        conn.execute(
            """
            insert into task (user_id, title, description, completed)
            select u.id, 'Task ' || g, case when g %% 2 = 0 then 'some details' end, g %% 3 = 0
            from "user" u, generate_series(1, %s) g
            """,
            (TASKS_PER_USER,),
        )
        conn.execute("vacuum analyze task")


@contextlib.contextmanager
def uvicorn(app: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{app} did not become ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def wrk(url: str, *, connections: int, seconds: int, script: Path | None = None) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")

    issuer = IssuerStub()  # tokens say iss/aud http://localhost:3000, as Better Auth would
    users = [issuer.user() for _ in range(USERS)]
    tokens = [issuer.mint(user, lifetime_s=3600, sid=session_id(user)) for user in users]
    figures: dict[str, Any] = {}
    with (
        database() as url,
        serve_jwks(issuer.jwks()) as jwks_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        migrate(url)
        seed(url, users)
        script = Path(tmp) / "tokens.lua"
        script.write_text(LUA % (",".join(json.dumps(t) for t in tokens), "/api/me/tasks"))
        env = {
            "DATABASE_URL": url,
            "BETTER_AUTH_URL": issuer.origin,
            "BETTER_AUTH_JWKS_URL": jwks_url,
            "LOG_LEVEL": "warning",
            "BENCH_USER_ID": users[0]["id"],
        }
        with uvicorn("backend.main:app", env) as base:
            wrk(f"{base}/health", connections=args.connections, seconds=2)  # warm-up
            figures["health"] = wrk(
                f"{base}/health", connections=args.connections, seconds=args.seconds
            )
            wrk(f"{base}/api/me/tasks", connections=args.connections, seconds=3, script=script)
            figures["auth"] = wrk(
                f"{base}/api/me/tasks",
                connections=args.connections,
                seconds=args.seconds,
                script=script,
            )
            figures["auth_1000_connections"] = wrk(
                f"{base}/api/me/tasks", connections=1000, seconds=args.seconds, script=script
            )
        with uvicorn("bench.noauth_app:app", env) as base:
            wrk(f"{base}/api/me/tasks", connections=args.connections, seconds=3)
            figures["noauth"] = wrk(
                f"{base}/api/me/tasks", connections=args.connections, seconds=args.seconds
            )

    print(f"{'route':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, f in figures.items():
        errors = f["non_2xx"] + f["socket_errors"]
        print(f"{name:28} {f['rps']:9.0f} {f['p50_ms']:8.2f} {f['p99_ms']:8.2f} {errors:7}")
    ratio = figures["auth"]["rps"] / figures["noauth"]["rps"]
    overhead = figures["auth_1000_connections"]
    errors = overhead["non_2xx"] + overhead["socket_errors"]
    targets = [
        target(
            "HTTP auth route vs no-auth baseline",
            ratio,
            "x req/s",
            f">= {AUTH_MIN_RATIO:g}x",
            ratio >= AUTH_MIN_RATIO,
        ),
        target(
            "1,000 concurrent connections, authenticated", errors, "errors", "== 0", errors == 0
        ),
    ]
    figures["auth_vs_noauth_ratio"] = round(ratio, 3)
    record("http", targets, figures)


if __name__ == "__main__":
    main()
