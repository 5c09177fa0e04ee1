"""`make dev`: PostgreSQL (embedded when DATABASE_URL is unset), both migrations, the
Next.js frontend (Better Auth inside, `next dev`) and the backend (uvicorn --reload).

State lives in .data/: the PostgreSQL cluster and BETTER_AUTH_SECRET (it must stay the same
for a database: it encrypts Better Auth's signing keys). A second run reuses both. While the
cluster runs, its URL is in .data/database-url: the backend's default DATABASE_URL, so a
backend, `alembic` or `python -m backend.explain` started by hand finds it. Ctrl-C stops
everything this started, and nothing else.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from backend.config import DEV_DATABASE_URL_FILE
from devtools.migrate import migrate
from devtools.pgcluster import LocalCluster, libpq_url
from devtools.servers import wait_until_up

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
FRONTEND = ROOT / "frontend"


def stable_secret() -> str:
    path = DATA / "better-auth-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def wait_for(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Until the server answers at all (a redirect or a 404 is an answer; a 5xx is not)."""
    try:
        wait_until_up(url, process, timeout_s=timeout_s, ready=lambda status: status < 500)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def main() -> int:
    DATA.mkdir(exist_ok=True)
    frontend_port = int(os.environ.get("FRONTEND_PORT", "3000"))
    backend_port = int(os.environ.get("BACKEND_PORT", "8000"))
    public_url = f"http://localhost:{frontend_port}"
    loopback_url = f"http://127.0.0.1:{frontend_port}"  # the same server, another origin

    cluster: LocalCluster | None = None
    database_url = os.environ.get("DATABASE_URL", "").strip()
    if not database_url:
        cluster = LocalCluster(DATA / "postgres")
        cluster.start()
        database_url = cluster.url
        DEV_DATABASE_URL_FILE.write_text(database_url + "\n")
        print(f"PostgreSQL (embedded, data in .data/postgres, {cluster.bindir}): {database_url}")

    env = {
        **os.environ,
        "DATABASE_URL": libpq_url(database_url),
        "BETTER_AUTH_SECRET": os.environ.get("BETTER_AUTH_SECRET") or stable_secret(),
        "BETTER_AUTH_URL": public_url,
    }
    processes: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)  # unwinds to the `finally` below, which stops everything

    def stop() -> None:
        # Ctrl-C reaches us twice (from the terminal, and forwarded by `uv run`): a second
        # SystemExit here would abandon the clean-up half way, leaving PostgreSQL running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if cluster is not None:
            cluster.stop()
            DEV_DATABASE_URL_FILE.unlink(missing_ok=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        migrate(env["DATABASE_URL"], secret=env["BETTER_AUTH_SECRET"])
        frontend = subprocess.Popen(
            [
                str(FRONTEND / "node_modules" / ".bin" / "next"),
                "dev",
                "-H",
                "127.0.0.1",
                "-p",
                str(frontend_port),
            ],
            cwd=FRONTEND,
            env={
                **env,
                "TRUSTED_ORIGINS": loopback_url,
                "NEXT_PUBLIC_API_URL": f"http://localhost:{backend_port}",
                "NEXT_TELEMETRY_DISABLED": "1",
            },
        )
        processes.append(frontend)
        wait_for(f"{loopback_url}/api/auth/ok", frontend, timeout_s=180)  # first compile
        backend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.main:app",
                "--reload",
                "--reload-dir",
                "backend",
                "--no-access-log",  # the backend logs each request itself, without query strings
                "--host",
                "127.0.0.1",
                "--port",
                str(backend_port),
            ],
            cwd=ROOT,
            env={
                **env,
                "BETTER_AUTH_JWKS_URL": f"{loopback_url}/api/auth/jwks",
                "ALLOWED_ORIGINS": f"{public_url},{loopback_url}",
                "LOG_FORMAT": os.environ.get("LOG_FORMAT", "text"),
            },
        )
        processes.append(backend)
        wait_for(f"http://127.0.0.1:{backend_port}/ready", backend)
        print(
            f"\n  Open {public_url}  (backend: http://localhost:{backend_port}/docs)\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        print("a server exited; stopping the rest", file=sys.stderr)
    finally:
        stop()
    return 1


if __name__ == "__main__":
    sys.exit(main())
