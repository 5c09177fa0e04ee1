"""The whole app on loopback for browser tests: a fresh database with both migrations, the
Next.js frontend (`next build` once, `next start`), the backend under uvicorn."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devtools.pgcluster import libpq_url, temporary_database
from devtools.servers import free_port, minimal_env, stop, wait_until_up

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Stack:
    frontend_url: str
    backend_url: str
    database_url: str


def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        raise RuntimeError("npm is required for the end-to-end tests")
    return found


def build_frontend() -> None:
    """`next build`, once per test run (it reads no per-run setting)."""
    result = subprocess.run(
        [npm(), "run", "build"],
        cwd=FRONTEND,
        env=minimal_env({"NEXT_TELEMETRY_DISABLED": "1"}),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"next build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@contextlib.contextmanager
def server(
    name: str, command: list[str], cwd: Path, env: dict[str, str], ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, its output in test-artifacts/NAME.log, stopped by its own pid."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_until_up(ready_url, process, timeout_s=90, log=log)
            yield process
        finally:
            stop(process)


@contextlib.contextmanager
def run_stack(
    server_url: str,
    *,
    jwt_expiration: str | None = None,
    leeway_s: int | None = None,
    label: str = "e2e",
) -> Iterator[Stack]:
    """Database (fresh) -> Better Auth's migration (the frontend's own script) -> Alembic ->
    backend + frontend. Yields the URLs; stops everything and drops the database after."""
    frontend_port, backend_port = free_port(), free_port()
    frontend_url = f"http://127.0.0.1:{frontend_port}"
    backend_url = f"http://127.0.0.1:{backend_port}"
    secret = secrets.token_urlsafe(32)
    auth_env = {
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_URL": frontend_url,
        "NEXT_PUBLIC_API_URL": backend_url,
        "NEXT_TELEMETRY_DISABLED": "1",
        # next start is production mode: Better Auth's rate limiter would see every test
        # client as one IP (3 sign-ins / 10 s). It stays on in real deployments.
        "AUTH_RATE_LIMIT": "off",
        **({"JWT_EXPIRATION": jwt_expiration} if jwt_expiration else {}),
    }
    with temporary_database(server_url, label) as database_url:
        auth_env["DATABASE_URL"] = libpq_url(database_url)
        subprocess.run(
            [npm(), "run", "migrate"],
            cwd=FRONTEND,
            env=minimal_env(auth_env),
            check=True,
            capture_output=True,
            timeout=120,
        )
        # Alembic in its own process: playwright's sync API keeps an event loop running here.
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=ROOT,
            env=minimal_env({"DATABASE_URL": database_url}),
            check=True,
            capture_output=True,
            timeout=120,
        )
        backend_env = minimal_env(
            {
                "DATABASE_URL": database_url,
                "BETTER_AUTH_URL": frontend_url,
                "BETTER_AUTH_JWKS_URL": f"{frontend_url}/api/auth/jwks",
                "ALLOWED_ORIGINS": frontend_url,
                **({"AUTH_LEEWAY_S": str(leeway_s)} if leeway_s is not None else {}),
            }
        )
        backend_cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "backend.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(backend_port),
        ]
        # `npm run start` runs exactly this; calling next directly keeps the pid we stop.
        next_bin = str(FRONTEND / "node_modules" / ".bin" / "next")
        frontend_cmd = [next_bin, "start", "-H", "127.0.0.1", "-p", str(frontend_port)]
        with (
            server(
                f"{label}-frontend",
                frontend_cmd,
                FRONTEND,
                minimal_env(auth_env),
                f"{frontend_url}/api/auth/ok",
            ),
            server(f"{label}-backend", backend_cmd, ROOT, backend_env, f"{backend_url}/ready"),
        ):
            yield Stack(frontend_url, backend_url, database_url)
