"""`python -m backend.explain`: the reason for each refusal, in words, and never the token."""

from __future__ import annotations

import time
from typing import Any

import pytest
import respx

from backend.auth.testing import OMIT, IssuerStub, generate_key
from backend.config import Settings
from backend.explain import explain, main
from tests.conftest import FrozenClock, delete_user


async def run(token: str, settings: Settings, clock: FrozenClock) -> str:
    report = await explain(token, settings, clock=clock)
    text = "\n".join(report.lines)
    assert token not in text
    return text


class TestExplain:
    async def test_accepted(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        token: str,
        user: dict[str, Any],
    ) -> None:
        text = await run(f"Bearer {token}", settings, clock)
        assert "FAIL" not in text
        assert f"user row found: {user['email']}" in text
        assert text.endswith("ACCEPTED")

    async def test_expired(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route, token: str
    ) -> None:
        clock.advance(900 + 200)
        text = await run(token, settings, clock)
        assert "FAIL  expired 3m ago (clock skew allowed: 30s)" in text
        assert "REFUSED by the verifier: expired" in text

    async def test_issued_in_the_future(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        token = issuer.mint(user, iat=int(clock()) + 600, exp=int(clock()) + 1200)
        text = await run(token, settings, clock)
        assert "iat is 10m in the future: is a clock wrong?" in text

    async def test_wrong_issuer_and_audience(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        token = issuer.mint(user, iss="http://localhost:3000/", aud="https://other.example")
        text = await run(token, settings, clock)
        assert "iss: expected 'http://localhost:3000', got 'http://localhost:3000/'" in text
        assert "aud: expected one of ['http://localhost:3000'], got 'https://other.example'" in text
        assert "REFUSED by the verifier: bad_issuer" in text

    async def test_unknown_kid(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        user: dict[str, Any],
        issuer: IssuerStub,
    ) -> None:
        stranger = generate_key("EdDSA")
        text = await run(issuer.mint(user, key=stranger), settings, clock)
        assert f"kid {stranger.kid!r} is not in the key set" in text
        assert "REFUSED by the verifier: unknown_kid" in text

    async def test_alg_differs_from_key(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        user: dict[str, Any],
        issuer: IssuerStub,
    ) -> None:
        token = issuer.mint(user, header={"alg": "ES256"})
        text = await run(token, settings, clock)
        assert "header alg 'ES256' differs from the key's alg 'EdDSA'" in text

    async def test_missing_subject(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        text = await run(issuer.mint(user, sub=OMIT), settings, clock)
        assert "sub must be a non-blank string, got None" in text

    async def test_deleted_user(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        token: str,
        user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        delete_user(migrated_database, user["id"])
        text = await run(token, settings, clock)
        assert f'no row in "user" with id {user["id"]!r}' in text

    async def test_keys_unreachable(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_mock: respx.Router,
        issuer: IssuerStub,
        token: str,
    ) -> None:
        jwks_mock.get(issuer.jwks_url).respond(503)
        text = await run(token, settings, clock)
        assert "could not fetch the key set: HTTP 503" in text
        assert "UNAVAILABLE (503)" in text

    @pytest.mark.parametrize("garbage", ["abc", "a.b", "a.b.c.d", "!!.??.##"])
    async def test_not_a_jwt(self, settings: Settings, clock: FrozenClock, garbage: str) -> None:
        report = await explain(garbage, settings, clock=clock)
        assert report.problems == 1
        assert report.lines[-1].startswith("  FAIL")


class TestCommandLine:
    def test_exit_status_and_output(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        migrated_database: str,
        jwks_route: respx.Route,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", migrated_database)
        monkeypatch.setenv("BETTER_AUTH_URL", "http://localhost:3000")
        monkeypatch.setenv("AUTH_REQUIRE_SESSION", "false")  # the stub's tokens carry no sid
        now = int(time.time())  # the command line runs on the real clock
        token = issuer.mint(user, iat=now, exp=now + 900)
        assert main([token]) == 0
        assert capsys.readouterr().out.rstrip().endswith("ACCEPTED")
        assert main(["not-a-token"]) == 1
