"""Helpers for the verifier's security tests (shared/SECURITY_CASES.md).

Two kinds of helper live here:
- forging: tokens an attacker can build without the issuer's keys (alg none, HMAC with a
  guessed or public secret, edited segments). Tokens that need a real signature are signed
  with `backend.auth.testing.sign_compact` / `IssuerStub.mint` and real keys;
- `Api`: GET /api/me on the app under test, and what every refusal must look like there
  ("401" in SECURITY_CASES: status, challenge, one body, no stray request, no 500, and the
  token never in a log record).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from backend.auth import JWKSCache, Reason, TokenVerifier
from backend.auth.testing import IssuerStub, b64url, compact_json
from backend.config import Settings
from backend.main import create_app

HeaderList = Sequence[tuple[str | bytes, str | bytes]]
SettingsFactory = Callable[..., Settings]
CacheFactory = Callable[..., JWKSCache]
VerifierFactory = Callable[..., TokenVerifier]
HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# A secret shorter than this could turn up in a log by chance: only longer ones are searched.
MIN_SECRET_CHARS = 16


# -- forging -------------------------------------------------------------------------------
def b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def encode_segment(part: Mapping[str, Any] | bytes) -> str:
    return b64url(part if isinstance(part, bytes) else compact_json(part))


def forge_unsigned(
    header: Mapping[str, Any] | bytes, payload: Mapping[str, Any] | bytes, signature: str = ""
) -> str:
    """A compact token with whatever signature segment we like (empty by default)."""
    return f"{encode_segment(header)}.{encode_segment(payload)}.{signature}"


def forge_hmac(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, secret: bytes) -> str:
    """An HS256/384/512 token (per header["alg"]) signed with `secret`, as an attacker would."""
    signing_input = f"{encode_segment(header)}.{encode_segment(payload)}"
    digest = hmac.new(secret, signing_input.encode("ascii"), HMAC_HASHES[header["alg"]])
    return f"{signing_input}.{b64url(digest.digest())}"


def split(token: str) -> tuple[str, str, str]:
    header, payload, signature = token.split(".")
    return header, payload, signature


def with_signature(token: str, signature: bytes) -> str:
    header, payload, _ = split(token)
    return f"{header}.{payload}.{b64url(signature)}"


def signature_of(token: str) -> bytes:
    return b64decode(split(token)[2])


# -- logs ----------------------------------------------------------------------------------
def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a formatter could print from a record: the message and every attribute
    (the `extra=` fields land there)."""
    texts = [record.getMessage()]
    texts.extend(f"{name}={value!r}" for name, value in vars(record).items())
    return texts


def assert_not_logged(records: Iterable[logging.LogRecord], *tokens: str) -> None:
    """Neither the tokens nor their signature segments appear in any log record."""
    needles: set[str] = set()
    for token in tokens:
        needles.add(token)
        parts = token.split(".")
        if len(parts) == 3:
            needles.add(parts[2])
    needles = {needle for needle in needles if len(needle) >= MIN_SECRET_CHARS}
    for record in records:
        text = "\n".join(record_texts(record))
        for needle in needles:
            assert needle not in text, f"a credential was logged by {record.name}"


def refusal_reasons(records: Iterable[logging.LogRecord]) -> list[str]:
    """The reasons the app logged for refusing tokens, oldest first."""
    return [
        str(getattr(record, "reason"))  # noqa: B009 (an `extra=` field, not a declared one)
        for record in records
        if record.name == "backend.errors" and hasattr(record, "reason")
    ]


# -- the app under test --------------------------------------------------------------------
@contextlib.asynccontextmanager
async def serve(settings: Settings, clock: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A started app (its JWKS warm-up only just begun) and a client on it."""
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def bearer_header(token: str) -> list[tuple[str | bytes, str | bytes]]:
    return [("Authorization", f"Bearer {token}")]


def raw_headers(headers: HeaderList | None) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes (httpx sends them as given, repeated names included)."""

    def raw(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("latin-1")

    return [(raw(name), raw(value)) for name, value in headers or []]


@dataclass
class Api:
    """GET /api/me on a started app whose only outside party is the issuer's JWKS (respx).

    `refused()` checks what SECURITY_CASES calls "401"; `accepted()` the 200. Both check that
    nothing but the JWKS URL was requested, that nothing answered 500 and that the token was
    never logged. `fetches` counts JWKS requests (respx records them once answered)."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: IssuerStub
    router: respx.Router
    route: respx.Route
    caplog: pytest.LogCaptureFixture
    invalid_reference: httpx.Response | None = None
    missing_reference: httpx.Response | None = None
    sent: list[str] = field(default_factory=list)
    checked_records: int = 0

    @property
    def fetches(self) -> int:
        return self.route.call_count

    @property
    def verifier(self) -> TokenVerifier:
        verifier: TokenVerifier = self.app.state.verifier
        return verifier

    @property
    def jwks(self) -> JWKSCache:
        jwks: JWKSCache = self.app.state.jwks
        return jwks

    async def take_references(self, bad_token: str) -> None:
        """One reference failure of each kind, to compare every later refusal with."""
        self.missing_reference = await self.client.get("/api/me")
        self.invalid_reference = await self.client.get(
            "/api/me", headers={"Authorization": f"Bearer {bad_token}"}
        )
        assert self.missing_reference.status_code == 401
        assert self.invalid_reference.status_code == 401

    async def me(
        self,
        token: str | None = None,
        *,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if token is not None:
            self.sent.append(token)
            headers = [*bearer_header(token), *(headers or [])]
        response = await self.client.get("/api/me", headers=raw_headers(headers), params=params)
        assert response.status_code != 500, response.text
        self.assert_only_jwks_requested()
        self.assert_nothing_logged()
        return response

    async def accepted(self, token: str, *, user: Mapping[str, Any] | None = None) -> None:
        response = await self.me(token)
        assert response.status_code == 200, response.text
        if user is not None:
            assert response.json()["id"] == user["id"]

    async def refused(
        self,
        token: str | None = None,
        *,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
        reason: Reason | Iterable[Reason] | None = None,
        fetches: int | None = 0,
        credential: bool = True,
    ) -> httpx.Response:
        """The request is answered "401". `fetches`: JWKS requests it may cause (exactly;
        None: any number). `credential`: a bearer token was sent (else: treated as anonymous).
        `reason`: what the app must have logged as the reason (one of them, if several)."""
        fetches_before, logged_before = self.fetches, len(self.caplog.records)
        response = await self.me(token, headers=headers, params=params)
        assert response.status_code == 401, response.text
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer"), challenge
        reference = self.invalid_reference if credential else self.missing_reference
        assert reference is not None, "take_references() first"
        assert response.content == reference.content
        if credential:
            assert 'error="invalid_token"' in challenge, challenge
        else:
            assert "error=" not in challenge, challenge
        if fetches is not None:
            assert self.fetches - fetches_before == fetches
        if reason is not None:
            allowed = {reason} if isinstance(reason, Reason) else set(reason)
            logged = refusal_reasons(self.caplog.records[logged_before:])
            assert logged, "no refusal reason was logged"
            assert logged[-1] in {r.value for r in allowed}, logged
        return response

    def keep_secret(self, *tokens: str) -> None:
        """Tokens sent other than as `token=` (query, cookie, extra headers): never logged."""
        self.sent.extend(tokens)

    def assert_only_jwks_requested(self) -> None:
        urls = {str(call.request.url) for call in self.router.calls}
        assert urls <= {self.issuer.jwks_url}, urls

    def assert_nothing_logged(self) -> None:
        """No record so far holds a token sent so far. Each record is checked once, against
        every token sent before it was written (a token cannot be logged before it is sent)."""
        records = self.caplog.records
        assert_not_logged(records[self.checked_records :], *self.sent)
        self.checked_records = len(records)
