"""1,000 signed-in users at once against one backend (one uvicorn worker, a real process):
each creates tasks, lists them, toggles one and lists again, all users concurrently.

Zero errors, and every user sees exactly their own tasks. The figures (throughput, p50,
p99) go to test-artifacts/load-1000-users.json; nothing here asserts a time.

The users are Better Auth's rows (user + live session, so AUTH_REQUIRE_SESSION is on, as
in production) and their tokens are real EdDSA JWTs from the issuer stub, served by a
loopback JWKS endpoint: signing 1,000 users up through Better Auth would spend minutes in
its password hashing and test nothing more about the backend (tests/e2e and
tests/test_real_better_auth.py cover Better Auth's own tokens).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psycopg
import pytest

from backend.auth.testing import IssuerStub
from bench.common import JWKSServer, serve_jwks
from devtools.servers import free_port, minimal_env
from tests.e2e.stack import ARTIFACTS, ROOT, server

USERS = 1_000
TASKS_EACH = 3


@dataclass(frozen=True)
class Backend:
    url: str
    jwks: JWKSServer
    database_url: str


@dataclass
class Outcome:
    """What the load saw: every request's latency, and anything that went wrong."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def seed(database_url: str, issuer: IssuerStub, count: int) -> dict[str, str]:
    """`count` users, each with a live session; returns each user's id -> bearer token."""
    users = [issuer.user() for _ in range(count)]
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.executemany(
            'insert into "user" (id, name, email, "emailVerified") values (%s, %s, %s, false)',
            [(u["id"], u["name"], u["email"]) for u in users],
        )
        cursor.executemany(
            'insert into "session" (id, token, "userId", "expiresAt", "updatedAt")'
            " values (%s, %s, %s, now() + interval '1 hour', now())",
            [(f"sid-{u['id']}", secrets.token_urlsafe(24), u["id"]) for u in users],
        )
    return {u["id"]: issuer.mint(u, lifetime_s=900, sid=f"sid-{u['id']}") for u in users}


@pytest.fixture(scope="module")
def issuer() -> IssuerStub:
    return IssuerStub()


@pytest.fixture(scope="module")
def tokens(migrated_database: str, issuer: IssuerStub) -> dict[str, str]:
    return seed(migrated_database, issuer, USERS)


@pytest.fixture(scope="module")
def backend(migrated_database: str, issuer: IssuerStub) -> Iterator[Backend]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_jwks(issuer.jwks()) as jwks:
        env = minimal_env(
            {
                "DATABASE_URL": migrated_database,
                "BETTER_AUTH_URL": issuer.origin,
                "BETTER_AUTH_JWKS_URL": jwks.url,
                "LOG_LEVEL": "warning",
            }
        )
        command = [sys.executable, "-m", "uvicorn", "backend.main:app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        # As backend/Dockerfile runs it: idle connections outlive the client's (see there).
        command += ["--timeout-keep-alive", "75"]
        with server("load-backend", command, ROOT, env, f"{url}/ready"):
            yield Backend(url, jwks, migrated_database)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    total_count: str | None


class OneUser:
    """One user's session: every answer is checked against what this user alone did."""

    def __init__(self, client: aiohttp.ClientSession, user_id: str, token: str, seen: Outcome):
        self.client, self.user_id, self.seen = client, user_id, seen
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Answer:
        started = time.perf_counter()
        try:
            async with self.client.request(method, path, headers=self.headers, **kwargs) as r:
                answer = Answer(r.status, await r.json(), r.headers.get("x-total-count"))
        except (aiohttp.ClientError, TimeoutError) as exc:  # counted: the test lists them all
            self.fail(f"{method} {path}: {type(exc).__name__} {exc}")
            return Answer(599, None, None)
        self.seen.latencies_ms.append((time.perf_counter() - started) * 1000)
        if answer.status != expect:
            self.fail(f"{method} {path}: {answer.status} {str(answer.body)[:200]}")
        return answer

    def fail(self, what: str) -> None:
        self.seen.errors.append(f"user {self.user_id}: {what}")

    async def run(self) -> None:
        created = []
        for n in range(TASKS_EACH):
            body = {"title": f"{self.user_id} task {n}", "description": None}
            answer = await self.call("POST", "/api/me/tasks", 201, json=body)
            if answer.status == 201:
                created.append(answer.body)
        listed = await self.call("GET", "/api/me/tasks", 200)
        self.expect_exactly(listed, {t["id"] for t in created}, "list after create")
        if not created:
            return
        first = created[0]["id"]
        toggled = await self.call("PATCH", f"/api/{self.user_id}/tasks/{first}/complete", 200)
        if toggled.status == 200 and toggled.body["completed"] is not True:
            self.fail("toggle did not complete the task")
        done = await self.call("GET", "/api/me/tasks", 200, params={"status": "completed"})
        self.expect_exactly(done, {first}, "completed list")

    def expect_exactly(self, answer: Answer, ids: set[str], what: str) -> None:
        if answer.status != 200:
            return  # already counted as an error
        tasks = answer.body
        if {t["id"] for t in tasks} != ids or len(tasks) != len(ids):
            self.fail(f"{what}: expected {sorted(ids)}, got {[t['id'] for t in tasks]}")
        if any(t["user_id"] != self.user_id for t in tasks):
            self.fail(f"{what}: another user's task in the list")
        if answer.total_count != str(len(ids)):
            self.fail(f"{what}: X-Total-Count {answer.total_count}")


async def load(base_url: str, tokens: dict[str, str]) -> tuple[Outcome, float]:
    """Every user at once, each on its own connection (1,000 connections open together).
    aiohttp, not httpx: httpx's pool spends more CPU than the server at 1,000 connections."""
    seen = Outcome()
    connector = aiohttp.TCPConnector(limit=len(tokens))
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as client:
        users = [OneUser(client, user_id, token, seen) for user_id, token in tokens.items()]
        started = time.perf_counter()
        await asyncio.gather(*(user.run() for user in users))
        return seen, time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class TestThousandUsers:
    def test_every_user_sees_exactly_their_own_tasks_with_zero_errors(
        self, backend: Backend, tokens: dict[str, str]
    ) -> None:
        fetches_before = backend.jwks.count()
        seen, wall_s = asyncio.run(load(backend.url, tokens))

        assert seen.errors == [], f"{len(seen.errors)} errors, first: {seen.errors[:5]}"
        requests = len(seen.latencies_ms)
        assert requests == USERS * (TASKS_EACH + 3)
        # The keys were cached at start-up: 1,000 new tokens cost no JWKS fetch.
        assert backend.jwks.count() == fetches_before

        with psycopg.connect(backend.database_url) as conn:
            rows = conn.execute(
                "select user_id, count(*), count(*) filter (where completed) from task"
                " where user_id = any(%s) group by user_id",
                (list(tokens),),
            ).fetchall()
        assert len(rows) == USERS
        assert all(total == TASKS_EACH and completed == 1 for _, total, completed in rows)

        figures = {
            "users": USERS,
            "requests": requests,
            "seconds": round(wall_s, 2),
            "requests_per_s": round(requests / wall_s, 1),
            "p50_ms": round(percentile(seen.latencies_ms, 0.50), 1),
            "p99_ms": round(percentile(seen.latencies_ms, 0.99), 1),
            "max_ms": round(max(seen.latencies_ms), 1),
        }
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "load-1000-users.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\n1,000 users: {figures}")
