"""HTTP throughput and latency: what the auth dependency costs on a real route, and where that
puts us against a Next.js route handler doing the same work with Better Auth's getSession.

Same data, same machine, same load generator: wrk (Debian's package), a separate process, over
loopback; 1,000 users with 20 tasks and one session each, in a fresh database migrated by both
migrations. The servers, all running at once (an idle one costs nothing):
- `auth`: GET /api/me/tasks on one uvicorn worker with 1,000 users' distinct bearer tokens (each
  naming its session, `sid`), one picked at random per request, so the verified-token, session
  and user caches are exercised honestly;
- `noauth`: the same route with auth replaced by a fixed user (bench/noauth_app.py);
- `auth_2_workers`: `auth` on two uvicorn workers;
- `nextjs`, `nextjs_plain`: the same "list my tasks" in Next.js (`next build` + `next start`,
  one Node process, bench/nextjs/ added to a throwaway copy of frontend/): a route handler that
  calls Better Auth's auth.api.getSession with the users' session cookies, then runs the same
  query through `pg`. `nextjs` uses the app's own Better Auth (frontend/lib/auth.ts: its jwt
  plugin mints a JWT on every getSession), `nextjs_plain` one without plugins.
Each route is checked first (200 with exactly the user's tasks; 401 without credentials), warmed
up, then measured in turns, ROUNDS runs each, at the same connections and duration, so other
work on a shared machine weighs on all of them alike. Then /health (the ceiling) and the `auth`
server at 1,000 connections, whose errors include the non-200 answers it sent after wrk stopped
waiting (read from its /metrics). Also recorded: the servers' CPU per request, the JWKS fetches
at the loopback key server by process (one per worker at start-up, none once running), and each
serving process's memory (VmRSS).

Run: `make bench` (or `uv run python -m bench.http`). Needs `wrk` on PATH and Node.js (npm).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from backend.auth.testing import IssuerStub
from bench.common import JWKSServer, database, serve_jwks
from bench.results import record, target
from devtools.migrate import migrate
from devtools.pgcluster import libpq_url
from devtools.servers import free_port, minimal_env, stop, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
NEXTJS_SOURCES = Path(__file__).resolve().parent / "nextjs"
LOGS = ROOT / "test-artifacts"
USERS = 1_000
TASKS_PER_USER = 20
AUTH_MIN_RATIO = 0.9  # authenticated route vs the same route without auth (DESIGN.md)
NEXTJS_MIN_RATIO = 6.0  # authenticated route vs Next.js + getSession (DESIGN.md)
WARM_UP_S = 5
ROUTE = "/api/me/tasks"
NEXTJS_ROUTES = {"nextjs": "/api/bench/tasks", "nextjs_plain": "/api/bench/tasks-plain"}

LUA = """
local values = {%s}
math.randomseed(42)
request = function()
  return wrk.format("GET", nil, {[%s] = values[math.random(#values)]})
end
"""


@dataclass(frozen=True)
class Seeded:
    user: dict[str, Any]
    session_id: str  # the `sid` its JWT carries (AUTH_REQUIRE_SESSION)
    session_token: str  # what Better Auth's cookie carries


def session_token() -> str:
    """Better Auth's session tokens are 32 characters of [A-Za-z0-9]."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def session_cookie(token: str, secret: str) -> str:
    """Better Auth's session cookie (shared/BETTER_AUTH.md): `<token>.<base64 HMAC-SHA256>`,
    URL-encoded."""
    signature = base64.b64encode(hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest())
    return "better-auth.session_token=" + quote(f"{token}.{signature.decode()}", safe="")


def seed(url: str, seeded: list[Seeded]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        with conn.cursor() as cursor:
            cursor.executemany(
                'insert into "user" (id, name, email, "emailVerified") values (%s, %s, %s, false)',
                [(s.user["id"], s.user["name"], s.user["email"]) for s in seeded],
            )
            # Seven days ahead, as Better Auth makes them: a session this fresh is not
            # refreshed (written) by getSession.
            cursor.executemany(
                'insert into "session" (id, token, "userId", "expiresAt", "updatedAt")'
                " values (%s, %s, %s, now() + interval '7 days', now())",
                [(s.session_id, s.session_token, s.user["id"]) for s in seeded],
            )
        conn.execute(
            """
            insert into task (user_id, title, description, completed)
            select u.id, 'Task ' || g, case when g %% 2 = 0 then 'some details' end, g %% 3 = 0
            from "user" u, generate_series(1, %s) g
            """,
            (TASKS_PER_USER,),
        )
        conn.execute("vacuum analyze")


def task_ids(url: str, user_id: str) -> set[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute("select id::text from task where user_id = %s", (user_id,)).fetchall()
    return {row[0] for row in rows}


# --- processes -------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The pids whose parent is `pid`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def worker_children(pid: int) -> list[int]:
    """uvicorn's worker processes (multiprocessing spawns them; its resource tracker is not one)."""
    found = []
    for child in children(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
    return found


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of one process, in MiB; 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used (all their threads)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    started: float  # monotonic
    workers: list[int] = field(default_factory=list)  # the pids that serve requests


def log_file(name: str) -> Path:
    """Where a server's output goes: test-artifacts/bench-NAME.log (git ignores it)."""
    LOGS.mkdir(exist_ok=True)
    return LOGS / f"bench-{name}.log"


@contextlib.contextmanager
def uvicorn(
    name: str, app: str, env: Mapping[str, str], jwks: JWKSServer, *, workers: int = 1
) -> Iterator[Server]:
    """The app under uvicorn, yielded once every worker has loaded its keys."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    started = time.monotonic()
    log = log_file(name)
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=output
        )
    server = Server(f"http://127.0.0.1:{port}", process, started)
    try:
        wait_until_up(f"{server.base}/ready", process, timeout_s=60, log=log)
        deadline = time.monotonic() + 30
        while True:
            # One worker runs in the process itself; more are children (multiprocessing spawn).
            server.workers = [process.pid] if workers == 1 else worker_children(process.pid)
            fetched = jwks.count(started, server.workers)
            unattributed = jwks.count(started, {None})
            if len(server.workers) == workers and fetched + unattributed >= workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app}: {workers} workers did not all load their keys")
            time.sleep(0.2)
        for _ in range(4 * workers):  # every worker's /ready (connections land at random)
            with httpx.Client() as client:
                client.get(f"{server.base}/ready").raise_for_status()
        yield server
    finally:
        stop(process, timeout_s=20)


def copy_file(source: str, destination: str) -> None:
    """node_modules are hard-linked (read, never written, by the build); the rest copied."""
    if "/node_modules/" in source:
        with contextlib.suppress(OSError):
            os.link(source, destination)
            return
    shutil.copy2(source, destination)


def prepare_nextjs(workdir: Path) -> tuple[Path, float]:
    """A throwaway copy of frontend/ with bench/nextjs/ added, built for production.

    A copy, so the product never contains the benchmark's routes and its `.next` is never
    rebuilt under a `next start` of the end-to-end tests running from the same checkout.
    Returns the app's directory and how long `next build` took."""
    app = workdir / "frontend"

    def ignore(directory: str, names: list[str]) -> set[str]:
        build_outputs = {".next", "next-env.d.ts", "tsconfig.tsbuildinfo"}
        return build_outputs & set(names) if Path(directory) == FRONTEND else set()

    shutil.copytree(FRONTEND, app, symlinks=True, ignore=ignore, copy_function=copy_file)
    # lib/api.ts imports the API's types from ../../shared-schema: the same layout here.
    shutil.copytree(
        ROOT / "shared-schema",
        workdir / "shared-schema",
        ignore=shutil.ignore_patterns("node_modules"),
    )
    shutil.copytree(NEXTJS_SOURCES, app, dirs_exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        [str(app / "node_modules" / ".bin" / "next"), "build"],
        cwd=app,
        env=minimal_env({"NEXT_TELEMETRY_DISABLED": "1"}),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"next build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return app, time.monotonic() - started


@contextlib.contextmanager
def next_start(app: Path, database_url: str, secret: str) -> Iterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **minimal_env(),
        "DATABASE_URL": libpq_url(database_url),
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_URL": base,
        "NEXT_TELEMETRY_DISABLED": "1",
    }
    command = [str(app / "node_modules" / ".bin" / "next"), "start", "-H", "127.0.0.1"]
    log = log_file("nextjs")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "-p", str(port)], cwd=app, env=env, stdout=output, stderr=output
        )
    try:
        wait_until_up(f"{base}/api/auth/ok", process, timeout_s=90, log=log)
        yield Server(base, process, time.monotonic(), tree(process.pid))
    finally:
        stop(process, timeout_s=20)


# --- load ------------------------------------------------------------------------------------


def lua_script(path: Path, header: str, values: list[str]) -> Path:
    path.write_text(LUA % (",".join(json.dumps(v) for v in values), json.dumps(header)))
    return path


def wrk(url: str, *, connections: int, seconds: int, script: Path | None = None) -> dict[str, Any]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> dict[str, Any]:
    def ms(label: str) -> float:
        for line in output.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == label:
                number = parts[1].rstrip("smu")
                unit = parts[1][len(number) :]
                scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]
                return round(float(number) * scale, 3)
        return float("nan")

    def after(prefix: str) -> str | None:
        for line in output.splitlines():
            if line.strip().startswith(prefix):
                return line.strip()[len(prefix) :].strip()
        return None

    rps = after("Requests/sec:")
    total = next((line.split()[0] for line in output.splitlines() if " requests in " in line), "0")
    non_2xx = after("Non-2xx or 3xx responses:")
    errors = after("Socket errors:")  # "connect 0, read 0, write 0, timeout 0"
    socket_errors = sum(int(part.split()[1]) for part in errors.split(",")) if errors else 0
    return {
        "rps": float(rps) if rps else 0.0,
        "requests": int(total),
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non_2xx) if non_2xx else 0,
        "socket_errors": socket_errors,
    }


def errors_of(run: Mapping[str, Any]) -> int:
    return int(run["non_2xx"]) + int(run["socket_errors"])


def measure(url: str, *, connections: int, seconds: int) -> dict[str, Any]:
    """A warm-up, then the measured run."""
    wrk(url, connections=connections, seconds=WARM_UP_S)
    return wrk(url, connections=connections, seconds=seconds)


# --- checks: the routes answer what they should ----------------------------------------------


def check_route(
    url: str, headers: Mapping[str, str], user_id: str, expected_ids: set[str], what: str
) -> None:
    """200 with exactly the user's tasks, newest first, and 401 without credentials."""
    answer = httpx.get(url, headers=dict(headers), timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text[:300]}")
    rows = answer.json()
    ids = {row["id"] for row in rows}
    if ids != expected_ids or {row["user_id"] for row in rows} != {user_id}:
        raise RuntimeError(f"{what}: not the user's {len(expected_ids)} tasks: {rows[:2]}")
    if headers and (status := httpx.get(url, timeout=30).status_code) != 401:
        raise RuntimeError(f"{what}: {status} without credentials, not 401")


# --- the benchmark ---------------------------------------------------------------------------


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of equal length: mean req/s and percentiles, summed errors, each round's req/s."""

    def mean(key: str) -> float:
        return round(sum(float(r[key]) for r in rounds) / len(rounds), 3)

    return {
        "rps": mean("rps"),
        "p50_ms": mean("p50_ms"),
        "p99_ms": mean("p99_ms"),
        "non_2xx": sum(r["non_2xx"] for r in rounds),
        "socket_errors": sum(r["socket_errors"] for r in rounds),
        "rps_per_round": [r["rps"] for r in rounds],
        # The servers' own CPU per answered request: what a route costs, whatever share of the
        # machine it got (PostgreSQL's work is not in it).
        "cpu_ms_per_request": round(
            1000 * sum(r["cpu_s"] for r in rounds) / max(1, sum(r["requests"] for r in rounds)), 3
        ),
    }


def server_errors(base: str) -> int:
    """Answers other than 200 the backend has sent on the task routes (its /metrics)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    total = 0
    for line in text.splitlines():
        task_route = 'route="/api/{user_id}/tasks"' in line and 'status="200"' not in line
        if line.startswith("http_requests_total{") and task_route:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def drained(base: str, timeout_s: float = 30) -> None:
    """Wait until the server has answered every request a load run left in flight (its count
    of answers stops moving), so what it answered after the client gave up is counted too."""
    deadline = time.monotonic() + timeout_s

    def answered() -> str:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        return "\n".join(line for line in text.splitlines() if line.startswith("http_requests"))

    previous = answered()
    while time.monotonic() < deadline:
        time.sleep(1)
        if (current := answered()) == previous:
            return
        previous = current


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="each measured run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per compared route")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    for tool in ("wrk", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (wrk: apt-get install wrk; npm: Node.js >= 20)")
    load = {"connections": args.connections, "seconds": args.seconds}

    issuer = IssuerStub()  # tokens say iss/aud http://localhost:3000, as Better Auth would
    users = [issuer.user() for _ in range(USERS)]
    seeded = [Seeded(u, f"session-{u['id']}", session_token()) for u in users]
    tokens = [issuer.mint(s.user, lifetime_s=3600, sid=s.session_id) for s in seeded]
    secret = secrets.token_urlsafe(32)
    cookies = [session_cookie(s.session_token, secret) for s in seeded]
    figures: dict[str, Any] = dict(vars(args))
    rounds: dict[str, list[dict[str, Any]]] = {}
    with (
        database() as url,
        serve_jwks(issuer.jwks()) as jwks,
        tempfile.TemporaryDirectory(prefix="bench-http-") as tmp,
        contextlib.ExitStack() as running,
    ):
        workdir = Path(tmp)
        migrate(url, secret=secret)  # both migrations: Better Auth's (its jwks table too), ours
        seed(url, seeded)
        bearer = lua_script(
            workdir / "bearer.lua", "Authorization", [f"Bearer {t}" for t in tokens]
        )
        cookie = lua_script(workdir / "cookie.lua", "Cookie", cookies)
        # Built before any server starts, so the build never competes with a measured run.
        nextjs_app, figures["nextjs_build_s"] = prepare_nextjs(workdir)
        first = seeded[0].user["id"]
        first_tasks = task_ids(url, first)
        env = {
            "DATABASE_URL": url,
            "BETTER_AUTH_URL": issuer.origin,
            "BETTER_AUTH_JWKS_URL": jwks.url,
            "LOG_LEVEL": "warning",
            "BENCH_USER_ID": first,
        }
        # Every server runs for the whole comparison (an idle one costs nothing), so the
        # compared routes can take turns: the other work on a shared machine then weighs on
        # each of them alike, instead of on whichever ran while it was busiest.
        servers = {
            "backend_1_worker": running.enter_context(
                uvicorn("backend_1_worker", "backend.main:app", env, jwks)
            ),
            "noauth_1_worker": running.enter_context(
                uvicorn("noauth_1_worker", "bench.noauth_app:app", env, jwks)
            ),
            "backend_2_workers": running.enter_context(
                uvicorn("backend_2_workers", "backend.main:app", env, jwks, workers=2)
            ),
            "nextjs": running.enter_context(next_start(nextjs_app, url, secret)),
        }
        backend, baseline = servers["backend_1_worker"], servers["noauth_1_worker"]
        nextjs, two = servers["nextjs"], servers["backend_2_workers"]
        figures["jwks_start_up_fetches_per_worker"] = {
            name: [jwks.count(server.started, {pid}) for pid in server.workers]
            for name, server in servers.items()
            if name != "nextjs"
        }
        bearer_0 = {"Authorization": f"Bearer {tokens[0]}"}
        check_route(f"{backend.base}{ROUTE}", bearer_0, first, first_tasks, "backend")
        check_route(f"{two.base}{ROUTE}", bearer_0, first, first_tasks, "backend, 2 workers")
        check_route(f"{baseline.base}{ROUTE}", {}, first, first_tasks, "no-auth baseline")
        compared: dict[str, tuple[str, Path | None, Server]] = {
            "auth": (f"{backend.base}{ROUTE}", bearer, backend),
            "noauth": (f"{baseline.base}{ROUTE}", None, baseline),
            "auth_2_workers": (f"{two.base}{ROUTE}", bearer, two),
        }
        nextjs.workers = tree(nextjs.process.pid)  # next start and any child it has
        for name, path in NEXTJS_ROUTES.items():
            check_route(f"{nextjs.base}{path}", {"Cookie": cookies[0]}, first, first_tasks, name)
            compared[name] = (f"{nextjs.base}{path}", cookie, nextjs)

        for route_url, script, _ in compared.values():
            wrk(route_url, connections=args.connections, seconds=WARM_UP_S, script=script)
        steady_from = time.monotonic()
        names = list(compared)
        for turn in range(args.rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                route_url, script, server = compared[name]
                cpu_before = cpu_seconds(server.workers)
                run = wrk(route_url, **load, script=script)
                run["cpu_s"] = cpu_seconds(server.workers) - cpu_before
                rounds.setdefault(name, []).append(run)
        figures["health"] = measure(f"{backend.base}/health", **load)
        errors_before = server_errors(backend.base)
        many = wrk(f"{backend.base}{ROUTE}", connections=1000, seconds=args.seconds, script=bearer)
        drained(backend.base)
        many["server_errors"] = server_errors(backend.base) - errors_before
        figures["auth_1000_connections"] = many
        figures["jwks_steady_fetches"] = jwks.count(steady_from)
        figures["memory_mib"] = {
            name: [rss_mib(pid) for pid in server.workers] for name, server in servers.items()
        }
    for name in names:
        figures[name] = combine(rounds[name])

    row = "{:24} {:>9} {:>9} {:>9} {:>7} {:>12}"
    print(f"\n{args.connections} connections, {args.rounds} rounds of {args.seconds} s per route")
    print(row.format("run", "req/s", "p50 ms", "p99 ms", "errors", "CPU ms/req"))
    for name in [*names, "health", "auth_1000_connections"]:
        f = figures[name]
        p50, p99, cpu = f"{f['p50_ms']:.2f}", f"{f['p99_ms']:.2f}", f.get("cpu_ms_per_request", "")
        print(row.format(name, f"{f['rps']:.0f}", p50, p99, errors_of(f), cpu))
    print(
        "1,000 connections: answers other than 200 the backend sent (those after wrk stopped"
        f" included): {many['server_errors']}"
    )
    print(f"next build: {figures['nextjs_build_s']:.0f} s; servers' output: {LOGS}/bench-*.log")
    print(f"memory, VmRSS MiB per serving process: {figures['memory_mib']}")
    print(f"JWKS fetches at start-up, per worker: {figures['jwks_start_up_fetches_per_worker']}")

    auth, noauth, nextjs_plain = figures["auth"], figures["noauth"], figures["nextjs_plain"]
    auth_ratio = auth["rps"] / noauth["rps"]
    nextjs_ratio = auth["rps"] / nextjs_plain["rps"]
    steady_fetches = figures["jwks_steady_fetches"]
    figures.update(
        auth_vs_noauth_ratio=round(auth_ratio, 3),
        auth_vs_nextjs_plain_ratio=round(nextjs_ratio, 3),
        auth_vs_nextjs_app_ratio=round(auth["rps"] / figures["nextjs"]["rps"], 3),
        two_vs_one_worker_ratio=round(figures["auth_2_workers"]["rps"] / auth["rps"], 3),
        # The same comparisons in CPU per request: less at the mercy of other work on the box.
        auth_cpu_overhead_ms=round(auth["cpu_ms_per_request"] - noauth["cpu_ms_per_request"], 3),
        nextjs_plain_vs_auth_cpu_ratio=round(
            nextjs_plain["cpu_ms_per_request"] / auth["cpu_ms_per_request"], 3
        ),
        nextjs_app_vs_auth_cpu_ratio=round(
            figures["nextjs"]["cpu_ms_per_request"] / auth["cpu_ms_per_request"], 3
        ),
    )
    for key in (
        "auth_vs_noauth_ratio",
        "auth_vs_nextjs_app_ratio",
        "two_vs_one_worker_ratio",
        "auth_cpu_overhead_ms",
        "nextjs_plain_vs_auth_cpu_ratio",
        "nextjs_app_vs_auth_cpu_ratio",
    ):
        print(f"{key}: {figures[key]}")
    targets = [
        target(
            "HTTP auth route vs no-auth baseline",
            auth_ratio,
            "x req/s",
            f">= {AUTH_MIN_RATIO:g}x",
            auth_ratio >= AUTH_MIN_RATIO,
        ),
        target(
            "HTTP auth route vs Next.js + getSession (plain Better Auth), same load",
            nextjs_ratio,
            "x req/s",
            f">= {NEXTJS_MIN_RATIO:g}x, p99 no higher",
            nextjs_ratio >= NEXTJS_MIN_RATIO and auth["p99_ms"] <= nextjs_plain["p99_ms"],
        ),
        target(
            "1,000 concurrent connections, authenticated",
            errors_of(many) + many["server_errors"],
            "errors",
            "== 0",
            errors_of(many) + many["server_errors"] == 0,
        ),
        target(
            "JWKS fetches during steady runs (1 and 2 workers)",
            steady_fetches,
            "fetches",
            "== 0",
            steady_fetches == 0,
        ),
    ]
    record("http", targets, figures)


if __name__ == "__main__":
    main()
