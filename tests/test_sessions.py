"""Instant sign-out (AUTH_REQUIRE_SESSION: a JWT's `sid` must name a live session row) and
Better Auth's session cookie as a credential (BETTER_AUTH_SECRET), with its CSRF Origin check.

Two halves: the issuer stub with session rows written straight into Better Auth's table (fast,
frozen clock, every boundary), then the REAL Better Auth (tests/better_auth, with `sid` in its
tokens as the frontend adds it): its sign-in, its sign-out, its cookies.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import httpx
import psycopg
import pytest
import respx
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import event

from backend.auth import Reason, TokenError
from backend.auth.testing import IssuerStub, better_auth_id
from backend.config import Settings
from backend.errors import INVALID_TOKEN, MISSING_CREDENTIALS
from backend.explain import explain
from backend.main import create_app
from backend.sessions import signed_session_token
from devtools.migrate import migrate_backend
from devtools.pgcluster import temporary_database
from devtools.servers import free_port
from tests.auth.support import refusal_reasons
from tests.better_auth.harness import (
    DEFAULT_SECRET,
    SESSION_COOKIE,
    SignedInUser,
    fetch_jwt,
    run_issuer,
    sign_in,
    sign_out,
    sign_up,
)
from tests.conftest import FrozenClock, bearer, delete_user, insert_user, libpq_url, settle
from tests.tasks.conftest import count_tasks

SESSION_TTL_S = 5  # AUTH_SESSION_CACHE_TTL_S's default (and maximum)
PASSWORD = "correct horse battery staple"
FOREIGN_ORIGIN = "https://evil.example"


def sign(token: str, secret: str) -> str:
    """A session cookie's value as Better Auth sets it: `<token>.<signature>`, URL-encoded."""
    mac = hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()
    return quote(f"{token}.{base64.b64encode(mac).decode()}", safe="")


def insert_session(database_url: str, user_id: str, expires_at: float) -> tuple[str, str]:
    """A row of Better Auth's "session" table; (id, token)."""
    session_id, token = better_auth_id(), better_auth_id()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            'insert into "session" (id, token, "userId", "expiresAt", "updatedAt")'
            " values (%s, %s, %s, to_timestamp(%s), now())",
            (session_id, token, user_id, expires_at),
        )
    return session_id, token


def execute(database_url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(statement, params)


def assert_refused(response: httpx.Response) -> None:
    """The one 401 of every token failure."""
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": INVALID_TOKEN}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def count_session_reads(app: FastAPI) -> list[str]:
    """A list that collects every statement the app sends to the "session" table. The
    background refresher is stopped first, so only what the test does is counted."""
    if app.state.refresher is not None:
        app.state.refresher.cancel()
    reads: list[str] = []

    def record(*args: Any) -> None:
        statement = str(args[2])
        if "FROM session" in statement:
            reads.append(statement)

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    return reads


@contextlib.asynccontextmanager
async def serve(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        await settle(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as client:
            yield client


# ============================================================ the issuer stub, session rows


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with session checks on (their default) and a cookie secret."""
    return Settings(
        **(settings.model_dump() | {"auth_require_session": True, "better_auth_secret": "s" * 40})
    )


@pytest.fixture
def live_session(user: dict[str, Any], clock: FrozenClock, migrated_database: str) -> str:
    """The id of a session of `user` that expires in a week."""
    session_id, _ = insert_session(migrated_database, user["id"], clock() + 7 * 86_400)
    return session_id


class TestRequireSession:
    async def test_no_token_at_all(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/me")
        assert response.status_code == 401
        assert response.json() == {"detail": MISSING_CREDENTIALS}

    async def test_live_session_is_accepted(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
    ) -> None:
        response = await client.get("/api/me", headers=bearer(issuer.mint(user, sid=live_session)))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user["id"]

    async def test_token_without_sid(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        token: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.INFO, logger="backend")
        assert_refused(await client.get("/api/me", headers=bearer(token)))
        assert refusal_reasons(caplog.records) == [Reason.NO_SESSION]

    @pytest.mark.parametrize("sid", ["", 42, None, ["x"]])
    async def test_sid_not_a_string(
        self, client: httpx.AsyncClient, issuer: IssuerStub, user: dict[str, Any], sid: object
    ) -> None:
        assert_refused(await client.get("/api/me", headers=bearer(issuer.mint(user, sid=sid))))

    async def test_unknown_sid(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.INFO, logger="backend")
        token = issuer.mint(user, sid=better_auth_id())
        assert_refused(await client.get("/api/me", headers=bearer(token)))
        assert refusal_reasons(caplog.records) == [Reason.SESSION_ENDED]

    async def test_sid_of_another_users_session(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        other = issuer.user(name="Grace")
        insert_user(migrated_database, other)
        theirs, _ = insert_session(migrated_database, other["id"], clock() + 3600)
        token = issuer.mint(user, sid=theirs)
        assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_expired_session(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        expired, _ = insert_session(migrated_database, user["id"], clock() - 1)
        assert_refused(await client.get("/api/me", headers=bearer(issuer.mint(user, sid=expired))))

    async def test_session_expiring_while_cached(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        session_id, _ = insert_session(migrated_database, user["id"], clock() + 2)
        token = issuer.mint(user, sid=session_id)
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        clock.advance(2)
        assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_revoked_session_is_refused_within_the_cache_ttl(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        reads = count_session_reads(app)
        token = issuer.mint(user, sid=live_session)
        for _ in range(20):
            assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        assert len(reads) == 1, "one database read per session per TTL"

        execute(migrated_database, 'delete from "session" where id = %s', live_session)
        clock.advance(SESSION_TTL_S - 0.1)
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        clock.advance(0.1)
        assert_refused(await client.get("/api/me", headers=bearer(token)))
        assert len(reads) == 2

    async def test_a_refresh_in_the_background_sees_the_sign_out(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
        migrated_database: str,
    ) -> None:
        """The sessions in use are re-read in bulk (backend/freshness.py): after a refresh,
        a revoked session is refused at once, with no read on the request path."""
        reads = count_session_reads(app)
        token = issuer.mint(user, sid=live_session)
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        execute(migrated_database, 'delete from "session" where id = %s', live_session)
        async with app.state.read_sessionmaker() as db:
            assert await app.state.sessions.refresh(db) == 1
        assert len(reads) == 2  # the request's read, then the refresh's
        assert_refused(await client.get("/api/me", headers=bearer(token)))
        assert len(reads) == 2

    async def test_no_cache_with_ttl_zero(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
        migrated_database: str,
    ) -> None:
        no_cache = settings.model_copy(update={"auth_session_cache_ttl_s": 0})
        token = issuer.mint(user, sid=live_session)
        async with serve(no_cache, clock) as client:
            assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
            execute(migrated_database, 'delete from "session" where id = %s', live_session)
            assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_deleted_user_is_refused_within_the_session_ttl(
        self,
        client: httpx.AsyncClient,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        """The user cache keeps rows for 30 s; the session row cascades with the user."""
        token = issuer.mint(user, sid=live_session)
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        delete_user(migrated_database, user["id"])
        clock.advance(SESSION_TTL_S)
        assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_off_accepts_a_token_without_sid(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route, token: str
    ) -> None:
        off = settings.model_copy(update={"auth_require_session": False})
        async with serve(off, clock) as client:
            response = await client.get("/api/me", headers=bearer(token))
        assert response.status_code == 200, response.text


class TestSessionCookie:
    """Cookie cases that need no real Better Auth: the real cookie is tested further down."""

    @pytest.fixture
    def cookie(self, user: dict[str, Any], clock: FrozenClock, migrated_database: str) -> str:
        _, token = insert_session(migrated_database, user["id"], clock() + 3600)
        return f"{SESSION_COOKIE}={sign(token, 's' * 40)}"

    async def test_signed_cookie_is_accepted(
        self, client: httpx.AsyncClient, user: dict[str, Any], cookie: str
    ) -> None:
        response = await client.get("/api/me", headers={"Cookie": cookie})
        assert response.status_code == 200, response.text
        assert response.json()["id"] == user["id"]

    async def test_secure_prefixed_name_is_accepted(
        self, client: httpx.AsyncClient, user: dict[str, Any], cookie: str
    ) -> None:
        response = await client.get("/api/me", headers={"Cookie": f"__Secure-{cookie}"})
        assert response.status_code == 200, response.text

    async def test_ignored_without_secret(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        cookie: str,
    ) -> None:
        no_secret = settings.model_copy(update={"better_auth_secret": None})
        async with serve(no_secret, clock) as client:
            response = await client.get("/api/me", headers={"Cookie": cookie})
        assert response.status_code == 401
        assert response.json() == {"detail": MISSING_CREDENTIALS}

    async def test_session_data_cookie_is_no_credential(
        self, client: httpx.AsyncClient, issuer: IssuerStub, user: dict[str, Any]
    ) -> None:
        cache = f"better-auth.session_data={issuer.mint(user)}"
        response = await client.get("/api/me", headers={"Cookie": cache})
        assert response.status_code == 401
        assert response.json() == {"detail": MISSING_CREDENTIALS}

    async def test_expired_session_cookie(
        self,
        client: httpx.AsyncClient,
        user: dict[str, Any],
        clock: FrozenClock,
        migrated_database: str,
    ) -> None:
        _, token = insert_session(migrated_database, user["id"], clock() - 1)
        cookie = f"{SESSION_COOKIE}={sign(token, 's' * 40)}"
        assert_refused(await client.get("/api/me", headers={"Cookie": cookie}))

    async def test_write_needs_an_allowed_origin(
        self,
        client: httpx.AsyncClient,
        user: dict[str, Any],
        cookie: str,
        migrated_database: str,
    ) -> None:
        body = {"title": "from a form elsewhere"}
        for origin in ({}, {"Origin": FOREIGN_ORIGIN}, {"Origin": "null"}):
            headers = {"Cookie": cookie, **origin}
            response = await client.post("/api/me/tasks", json=body, headers=headers)
            assert response.status_code == 403, (origin, response.text)
        assert count_tasks(migrated_database, user["id"]) == 0
        headers = {"Cookie": cookie, "Origin": "http://localhost:3000"}
        response = await client.post("/api/me/tasks", json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert count_tasks(migrated_database, user["id"]) == 1


class TestSignedSessionToken:
    SECRET = b"s" * 40

    def test_encoded_and_plain_values(self) -> None:
        value = sign("abc123", self.SECRET.decode())
        assert "%" in value
        assert signed_session_token(value, self.SECRET) == "abc123"
        assert signed_session_token(unquote(value), self.SECRET) == "abc123"

    @pytest.mark.parametrize(
        "value",
        [
            "",
            "no-dot",
            ".AAAA",
            "token.short=",
            "token." + "A" * 44,  # 44 characters, but no padding
            "token." + "A" * 43 + "=",  # well formed, wrong
            "x" * 600,
        ],
    )
    def test_refused(self, value: str) -> None:
        with pytest.raises(TokenError):
            signed_session_token(value, self.SECRET)

    def test_other_secret_refused(self) -> None:
        with pytest.raises(TokenError) as caught:
            signed_session_token(sign("abc123", "t" * 40), self.SECRET)
        assert caught.value.reason is Reason.BAD_SIGNATURE


class TestExplain:
    """`python -m backend.explain` checks the session as the backend does."""

    async def test_live_session(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
        live_session: str,
    ) -> None:
        report = await explain(issuer.mint(user, sid=live_session), settings, clock=clock)
        assert f"  ok    session row {live_session!r} is live" in report.lines
        assert report.lines[-1] == "ACCEPTED"

    async def test_no_sid(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route, token: str
    ) -> None:
        report = await explain(token, settings, clock=clock)
        assert report.problems == 1
        assert "no sid claim, and AUTH_REQUIRE_SESSION is on" in "\n".join(report.lines)
        assert "ACCEPTED" not in report.lines

    async def test_signed_out(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        sid = better_auth_id()
        report = await explain(issuer.mint(user, sid=sid), settings, clock=clock)
        assert f"  FAIL  session {sid!r}: no such session (signed out or revoked)" in report.lines
        assert "ACCEPTED" not in report.lines


class TestSettings:
    def test_defaults(self) -> None:
        settings = Settings(_env_file=None)
        assert settings.auth_require_session is True
        assert settings.auth_session_cache_ttl_s == 5

    def test_cache_ttl_at_most_5_s(self) -> None:
        with pytest.raises(ValidationError, match="auth_session_cache_ttl_s"):
            Settings(_env_file=None, auth_session_cache_ttl_s=6)

    def test_blank_secret_is_unset_and_never_shown(self) -> None:
        assert Settings(_env_file=None, better_auth_secret=" ").better_auth_secret is None
        settings = Settings(_env_file=None, better_auth_secret="hush-" * 8)
        assert "hush" not in repr(settings)


# ============================================================ the real Better Auth


@dataclass(frozen=True)
class RealAuth:
    base_url: str
    database_url: str
    plain_token: str
    """A JWT of Better Auth's default payload: no `sid` (issued before `sid` was turned on)."""

    def new_user(self) -> SignedInUser:
        email = f"{secrets.token_hex(6)}@example.com"
        return sign_up(self.base_url, email=email, password=PASSWORD, name="Ada")

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "better_auth_url": self.base_url,
            "better_auth_secret": DEFAULT_SECRET,
            "log_format": "text",
        }
        return Settings(_env_file=None, **(values | overrides))


@pytest.fixture(scope="module")
def real(postgres_server_url: str) -> Iterator[RealAuth]:
    """Better Auth on a fresh database, first as it comes (tokens without `sid`), then on the
    same port, keys and database with `sid` added as frontend/lib/auth.ts does."""
    with temporary_database(postgres_server_url, "test_sessions") as database_url:
        port = free_port()
        with run_issuer(database_url, port=port) as base_url:
            plain = sign_up(base_url, email="plain@example.com", password=PASSWORD, name="P")
            plain_token = fetch_jwt(base_url, plain)
        migrate_backend(database_url)
        with run_issuer(database_url, port=port, sid=True) as base_url:
            yield RealAuth(base_url, database_url, plain_token)


@pytest.fixture
def real_clock() -> FrozenClock:
    """Frozen at the real time: Better Auth's tokens and sessions are dated by the real clock."""
    return FrozenClock(time.time())


class TestRealSignOut:
    async def test_jwt_of_a_signed_in_session_is_accepted(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        again = sign_in(real.base_url, email=user.user["email"], password=PASSWORD)
        async with serve(real.settings(), real_clock) as client:
            for session in (user, again):
                response = await client.get(
                    "/api/me", headers=bearer(fetch_jwt(real.base_url, session))
                )
                assert response.status_code == 200, response.text
                assert response.json()["id"] == user.user["id"]

    async def test_sign_out_ends_the_jwt_within_5_s(
        self, real: RealAuth, real_clock: FrozenClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="backend")
        user = real.new_user()
        other_session = sign_in(real.base_url, email=user.user["email"], password=PASSWORD)
        token, other_token = fetch_jwt(real.base_url, user), fetch_jwt(real.base_url, other_session)
        async with serve(real.settings(), real_clock) as client:
            assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
            sign_out(real.base_url, user)  # Better Auth's own /api/auth/sign-out
            real_clock.advance(SESSION_TTL_S)
            assert_refused(await client.get("/api/me", headers=bearer(token)))
            # The user's other session (another device) is untouched.
            assert (await client.get("/api/me", headers=bearer(other_token))).status_code == 200
        assert refusal_reasons(caplog.records) == [Reason.SESSION_ENDED]

    async def test_sign_out_with_no_cache_ends_the_jwt_at_once(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        token = fetch_jwt(real.base_url, user)
        async with serve(real.settings(auth_session_cache_ttl_s=0), real_clock) as client:
            assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
            sign_out(real.base_url, user)
            assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_expired_session(self, real: RealAuth, real_clock: FrozenClock) -> None:
        user = real.new_user()
        token = fetch_jwt(real.base_url, user)
        execute(
            real.database_url,
            """update "session" set "expiresAt" = now() - interval '1 minute' where token = %s""",
            user.session_token,
        )
        async with serve(real.settings(), real_clock) as client:
            assert_refused(await client.get("/api/me", headers=bearer(token)))

    async def test_token_without_sid(self, real: RealAuth, real_clock: FrozenClock) -> None:
        async with serve(real.settings(), real_clock) as client:
            assert_refused(await client.get("/api/me", headers=bearer(real.plain_token)))
        async with serve(real.settings(auth_require_session=False), real_clock) as client:
            response = await client.get("/api/me", headers=bearer(real.plain_token))
        assert response.status_code == 200, response.text
        assert response.json()["email"] == "plain@example.com"

    async def test_sid_of_another_users_session(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        alice, bob = real.new_user(), real.new_user()
        token = fetch_jwt(real.base_url, bob)
        # Bob's token now names a session that is Alice's.
        execute(
            real.database_url,
            """update "session" set "userId" = %s where token = %s""",
            alice.user["id"],
            bob.session_token,
        )
        async with serve(real.settings(), real_clock) as client:
            assert_refused(await client.get("/api/me", headers=bearer(token)))


class TestRealSessionCookie:
    async def test_cookie_is_accepted(self, real: RealAuth, real_clock: FrozenClock) -> None:
        user = real.new_user()
        async with serve(real.settings(), real_clock) as client:
            response = await client.get("/api/me", headers={"Cookie": user.cookie_header})
        assert response.status_code == 200, response.text
        assert response.json()["email"] == user.user["email"]

    async def test_tampered_cookie_is_refused(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        token, signature = unquote(user.cookie_header.partition("=")[2]).rsplit(".", 1)
        other_token = real.new_user().session_token  # a live session, but not what was signed
        forged = [
            f"{token[:-1]}{'A' if token[-1] != 'A' else 'B'}.{signature}",
            f"{other_token}.{signature}",
            f"{token}.{signature[:-2]}A=",
            sign(token, "not-the-secret-" * 3),
            token,
        ]
        async with serve(real.settings(), real_clock) as client:
            for value in forged:
                cookie = f"{SESSION_COOKIE}={quote(value, safe='')}"
                assert_refused(await client.get("/api/me", headers={"Cookie": cookie}))

    async def test_signed_out_cookie_is_refused(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        sign_out(real.base_url, user)
        async with serve(real.settings(), real_clock) as client:
            assert_refused(await client.get("/api/me", headers={"Cookie": user.cookie_header}))

    async def test_cookie_write_needs_an_allowed_origin(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        body = {"title": "Buy milk"}
        async with serve(real.settings(), real_clock) as client:
            foreign = await client.post(
                "/api/me/tasks",
                json=body,
                headers={"Cookie": user.cookie_header, "Origin": FOREIGN_ORIGIN},
            )
            missing = await client.post(
                "/api/me/tasks", json=body, headers={"Cookie": user.cookie_header}
            )
            assert count_tasks(real.database_url, user.user["id"]) == 0
            allowed = await client.post(
                "/api/me/tasks",
                json=body,
                headers={"Cookie": user.cookie_header, "Origin": real.base_url},
            )
        assert foreign.status_code == 403, foreign.text
        assert missing.status_code == 403, missing.text
        assert allowed.status_code == 201, allowed.text
        assert allowed.json()["user_id"] == user.user["id"]
        assert count_tasks(real.database_url, user.user["id"]) == 1

    async def test_bearer_wins_over_cookie(self, real: RealAuth, real_clock: FrozenClock) -> None:
        alice, bob = real.new_user(), real.new_user()
        headers = {"Cookie": alice.cookie_header, **bearer(fetch_jwt(real.base_url, bob))}
        async with serve(real.settings(), real_clock) as client:
            response = await client.get("/api/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == bob.user["id"]

    async def test_bad_bearer_never_falls_back_to_the_cookie(
        self, real: RealAuth, real_clock: FrozenClock
    ) -> None:
        user = real.new_user()
        token = fetch_jwt(real.base_url, user)
        async with serve(real.settings(), real_clock) as client:
            for authorization in (f"Bearer {token[:-4]}AAAA", "Bearer not-a-jwt"):
                headers = {"Cookie": user.cookie_header, "Authorization": authorization}
                assert_refused(await client.get("/api/me", headers=headers))
            headers = {"Cookie": user.cookie_header, "Authorization": "Basic dTpw"}
            response = await client.get("/api/me", headers=headers)
        assert response.status_code == 401
