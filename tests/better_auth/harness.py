"""The real Better Auth (npm better-auth 1.7.25) as a JWT issuer for Python tests.

`run_issuer` runs Better Auth's own migrations on a PostgreSQL database and serves its routes
at `{base_url}/api/auth/*` from a Node subprocess (tests/better_auth/issuer.mjs);
`sign_up` / `sign_in` get a session, `fetch_jwt` trades it for a JWT signed by the jwt plugin,
`sign_out` ends the session (Better Auth deletes its row), and `fetch_jwks` reads the public key
set the backend verifies against. `run_issuer(..., sid=True)` adds `sid` (the session id) to
the tokens, as the frontend's `definePayload` does.

Needs `node` (20+) on PATH and `npm ci --prefix tests/better_auth` run from the repository root.

    with run_issuer(database_url, alg="ES256") as base_url:
        user = sign_up(base_url, email="a@example.com", password="pass-word-1234", name="A")
        token = fetch_jwt(base_url, user)
        jwks = fetch_jwks(base_url)

Better Auth keeps the first key it minted in the `jwks` table and goes on signing with it, so
use a fresh database for each algorithm, and the same secret for a database's whole life (the
private keys are encrypted with it).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from devtools.servers import free_port

__all__ = [
    "DEFAULT_SECRET",
    "HARNESS_DIR",
    "SESSION_COOKIE",
    "SUPPORTED_ALGS",
    "IssuerError",
    "SignedInUser",
    "fetch_jwks",
    "fetch_jwt",
    "node_database_url",
    "run_issuer",
    "sign_in",
    "sign_out",
    "sign_up",
]

HARNESS_DIR = Path(__file__).resolve().parent
SUPPORTED_ALGS = ("EdDSA", "ES256", "ES512", "RS256", "PS256")
# At least 32 characters and "high entropy" by Better Auth's estimate, so it logs no warning.
DEFAULT_SECRET = "better-auth-harness-secret-NOT-for-production-0123456789"
# The cookie name over http; Better Auth adds a `__Secure-` prefix on https.
SESSION_COOKIE = "better-auth.session_token"

READY_TIMEOUT = 60.0
MIGRATE_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 30.0

# Settings the Node side reads from its environment: never inherited from the caller's.
_SCRUBBED_ENV = (
    "DATABASE_URL",
    "PORT",
    "JWT_ALG",
    "JWT_EXPIRATION",
    "JWT_SID",
    "AUTH_SECRET",
    "NODE_ENV",
)


class IssuerError(RuntimeError):
    """The Node issuer (or its migration) failed; the message carries its stderr."""


@dataclass(frozen=True)
class SignedInUser:
    """A Better Auth session as a browser would hold it."""

    user: dict[str, Any]
    """The user object Better Auth answered with (id, email, name, emailVerified, ...)."""
    session_token: str
    """The session row's token (`{"token": ...}` of the sign-up/sign-in answer)."""
    cookie_header: str
    """A ready `Cookie` header value: `better-auth.session_token=<token>.<signature>`."""
    cookies: httpx.Cookies
    """The cookies the answer set, for an httpx client."""


def node_database_url(database_url: str) -> str:
    """A SQLAlchemy-style URL (`postgresql+psycopg://...`) as node-postgres takes it."""
    return re.sub(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://", r"\1://", database_url)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise IssuerError("`node` is not on PATH; the Better Auth harness needs Node 20+")
    if not (HARNESS_DIR / "node_modules" / "better-auth").is_dir():
        raise IssuerError(
            f"{HARNESS_DIR / 'node_modules'} lacks better-auth: "
            "run `npm ci --prefix tests/better_auth` from the repository root"
        )
    return node


def _node_env(settings: Mapping[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BETTER_AUTH") and key not in _SCRUBBED_ENV
    }
    env.update(settings)
    return env


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    try:
        for line in stream:
            lines.put(line.rstrip("\r\n"))
    finally:
        lines.put(None)


def _stderr_text(stderr: IO[str]) -> str:
    stderr.flush()
    stderr.seek(0)
    return stderr.read().strip() or "(no stderr)"


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def run_issuer(
    database_url: str,
    *,
    alg: str = "EdDSA",
    port: int | None = None,
    secret: str = DEFAULT_SECRET,
    expiration: str | None = None,
    sid: bool = False,
) -> Iterator[str]:
    """Migrate `database_url` and serve Better Auth on 127.0.0.1; yields the base URL.

    `alg` is the jwt plugin's key algorithm (EdDSA, ES256, ES512, RS256, PS256); `expiration`
    its `jwt.expirationTime` ("15m" when None); `sid` adds the session id to every token's
    payload (`definePayload`, as frontend/lib/auth.ts does). The base URL is also the tokens'
    `iss` and `aud`, and the JWKS is at `{base_url}/api/auth/jwks`.
    """
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"alg must be one of {', '.join(SUPPORTED_ALGS)}; got {alg!r}")
    node = _node()
    port = free_port() if port is None else port
    base_url = f"http://127.0.0.1:{port}"
    settings = {
        "DATABASE_URL": node_database_url(database_url),
        "BETTER_AUTH_SECRET": secret,
        "BETTER_AUTH_URL": base_url,
        "PORT": str(port),
        "JWT_ALG": alg,
    }
    if expiration is not None:
        settings["JWT_EXPIRATION"] = expiration
    if sid:
        settings["JWT_SID"] = "1"
    env = _node_env(settings)

    migration = subprocess.run(
        [node, "migrate.mjs"],
        cwd=HARNESS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
    )
    if migration.returncode != 0:
        raise IssuerError(
            f"migrate.mjs exited {migration.returncode}:\n"
            f"{migration.stderr.strip() or migration.stdout.strip() or '(no output)'}"
        )

    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [node, "issuer.mjs"],
            cwd=HARNESS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
        )
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(
            target=_read_lines, args=(process.stdout, lines), name="issuer-stdout", daemon=True
        )
        reader.start()
        try:
            _wait_ready(process, lines, f"ready {base_url}", stderr)
            yield base_url
        finally:
            _stop(process)
            reader.join(timeout=STOP_TIMEOUT)
            process.stdout.close()


def _wait_ready(
    process: subprocess.Popen[str], lines: queue.Queue[str | None], ready: str, stderr: IO[str]
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    seen: list[str] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise IssuerError(
                f"issuer.mjs did not print {ready!r} within {READY_TIMEOUT:.0f} s; "
                f"stdout: {seen!r}\nstderr:\n{_stderr_text(stderr)}"
            )
        try:
            line = lines.get(timeout=min(remaining, 0.5))
        except queue.Empty:
            continue
        if line is None:
            code = process.wait(timeout=STOP_TIMEOUT)
            raise IssuerError(
                f"issuer.mjs exited {code} before it was ready; stdout: {seen!r}\n"
                f"stderr:\n{_stderr_text(stderr)}"
            )
        if line == ready:
            return
        seen.append(line)


def _client(base_url: str) -> httpx.Client:
    # Better Auth answers 403 to a state-changing call from a missing or untrusted Origin.
    return httpx.Client(base_url=base_url, headers={"Origin": base_url}, timeout=HTTP_TIMEOUT)


def _checked(response: httpx.Response) -> Any:
    if response.is_error:
        raise IssuerError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )
    return response.json()


def _signed_in(response: httpx.Response) -> SignedInUser:
    body = _checked(response)
    cookie = response.cookies.get(SESSION_COOKIE)
    if cookie is None:
        raise IssuerError(f"{response.request.url} set no {SESSION_COOKIE} cookie: {response.text}")
    cookies = httpx.Cookies()
    cookies.set(SESSION_COOKIE, cookie)
    return SignedInUser(
        user=dict(body["user"]),
        session_token=str(body["token"]),
        cookie_header=f"{SESSION_COOKIE}={cookie}",
        cookies=cookies,
    )


def sign_up(base_url: str, *, email: str, password: str, name: str) -> SignedInUser:
    """POST /api/auth/sign-up/email: a new user, signed in (password: 8 to 128 characters)."""
    with _client(base_url) as client:
        response = client.post(
            "/api/auth/sign-up/email", json={"email": email, "password": password, "name": name}
        )
    return _signed_in(response)


def sign_in(base_url: str, *, email: str, password: str) -> SignedInUser:
    """POST /api/auth/sign-in/email: a new session for an existing user."""
    with _client(base_url) as client:
        response = client.post(
            "/api/auth/sign-in/email", json={"email": email, "password": password}
        )
    return _signed_in(response)


def fetch_jwt(base_url: str, user: SignedInUser) -> str:
    """GET /api/auth/token with the session cookie: a fresh JWT from the jwt plugin."""
    with _client(base_url) as client:
        body = _checked(client.get("/api/auth/token", headers={"Cookie": user.cookie_header}))
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        raise IssuerError(f"/api/auth/token answered without a token: {body!r}")
    return token


def sign_out(base_url: str, user: SignedInUser) -> None:
    """POST /api/auth/sign-out with the session cookie: Better Auth deletes the session row."""
    with _client(base_url) as client:
        body = _checked(client.post("/api/auth/sign-out", headers={"Cookie": user.cookie_header}))
    if not isinstance(body, dict) or body.get("success") is not True:
        raise IssuerError(f"/api/auth/sign-out answered {body!r}")


def fetch_jwks(base_url: str) -> dict[str, Any]:
    """GET /api/auth/jwks: `{"keys": [...]}` as Better Auth publishes it."""
    with _client(base_url) as client:
        body = _checked(client.get("/api/auth/jwks"))
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise IssuerError(f"/api/auth/jwks answered no key set: {body!r}")
    return body
