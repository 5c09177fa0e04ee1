"""Tokens minted by the REAL better-auth package (tests/better_auth, pinned), verified through
its real /api/auth/jwks: no stub, no mock, over loopback HTTP."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from backend.auth import JWKSCache, TokenVerifier
from backend.config import Settings
from backend.main import create_app
from devtools.pgcluster import temporary_database
from tests.better_auth.harness import fetch_jwks, fetch_jwt, run_issuer, sign_in, sign_up
from tests.conftest import settle, started

ALGORITHMS = ["EdDSA", "ES256", "RS256"]


@pytest.fixture(scope="module", params=ALGORITHMS)
def better_auth(
    request: pytest.FixtureRequest, postgres_server_url: str
) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of a real Better Auth issuing `alg` tokens, with `sid` as the
    frontend adds it (the app checks it by default). One database per algorithm: Better Auth
    keeps signing with the first key it stored."""
    with (
        temporary_database(postgres_server_url, f"test_ba_{request.param.lower()}") as database_url,
        run_issuer(database_url, alg=request.param, sid=True) as base_url,
    ):
        yield base_url, database_url


class TestRealBetterAuthTokens:
    async def test_token_verifies_against_the_real_jwks(self, better_auth: tuple[str, str]) -> None:
        base_url, _ = better_auth
        user = sign_up(
            base_url,
            email=f"{secrets.token_hex(4)}@example.com",
            password="correct horse battery",
            name="Ada",
        )
        token = fetch_jwt(base_url, user)
        header_kid = fetch_jwks(base_url)["keys"][0]["kid"]

        async with httpx.AsyncClient() as http:
            jwks = JWKSCache(f"{base_url}/api/auth/jwks", client=http)
            verifier = TokenVerifier(jwks, issuer=base_url, audiences=[base_url])
            verified = await verifier.verify(token)

        assert verified.sub == user.user["id"]
        assert verified.key.kid == header_kid
        assert verified.claims["email"] == user.user["email"]
        assert jwks.fetch_count == 1

    async def test_signed_in_user_reads_me_through_the_app(
        self, better_auth: tuple[str, str]
    ) -> None:
        base_url, database_url = better_auth
        email = f"{secrets.token_hex(4)}@example.com"
        sign_up(base_url, email=email, password="correct horse battery", name="Grace")
        token = fetch_jwt(
            base_url, sign_in(base_url, email=email, password="correct horse battery")
        )
        settings = Settings(_env_file=None, database_url=database_url, better_auth_url=base_url)
        app = create_app(settings)
        async for running in started(app):
            await settle(running)
            transport = httpx.ASGITransport(app=running)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
                tampered = await client.get(
                    "/api/me", headers={"Authorization": f"Bearer {token[:-4]}AAAA"}
                )
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        assert me.json()["name"] == "Grace"
        assert tampered.status_code == 401
