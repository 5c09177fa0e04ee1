"""Fixtures of the verifier's security tests (tests/conftest.py has the shared ones)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from backend.auth import JWKSCache, TokenVerifier
from backend.auth.testing import IssuerStub
from backend.config import Settings
from tests.auth.support import (
    Api,
    CacheFactory,
    SettingsFactory,
    VerifierFactory,
    signature_of,
    with_signature,
)
from tests.conftest import FrozenClock


@pytest.fixture
def make_settings(settings: Settings) -> SettingsFactory:
    """The test settings with some values changed (and validated again)."""

    def factory(**overrides: Any) -> Settings:
        return Settings(**(settings.model_dump() | overrides))

    return factory


@pytest.fixture
async def api(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: IssuerStub,
    jwks_mock: respx.Router,
    jwks_route: respx.Route,
    caplog: pytest.LogCaptureFixture,
    clock: FrozenClock,
) -> Api:
    """GET /api/me on the started app, with its logs captured at DEBUG and one reference
    failure of each kind (no credential; a token with a broken signature) taken."""
    caplog.set_level(logging.DEBUG, logger="backend")
    api = Api(
        app=app,
        client=client,
        issuer=issuer,
        router=jwks_mock,
        route=jwks_route,
        caplog=caplog,
    )
    genuine = issuer.mint()
    broken = bytearray(signature_of(genuine))
    broken[0] ^= 0x01
    await api.take_references(with_signature(genuine, bytes(broken)))
    return api


@pytest.fixture
async def make_cache(
    jwks_mock: respx.Router, issuer: IssuerStub, clock: FrozenClock
) -> AsyncIterator[CacheFactory]:
    """JWKSCache(issuer's JWKS URL, frozen clock, **options) on an httpx client that respx
    answers; closed (with any fetch in flight) at the end of the test."""
    caches: list[JWKSCache] = []
    async with httpx.AsyncClient() as http:

        def factory(**options: Any) -> JWKSCache:
            cache = JWKSCache(issuer.jwks_url, client=http, clock=clock, **options)
            caches.append(cache)
            return cache

        yield factory
        for cache in caches:
            await cache.aclose()


@pytest.fixture
def make_verifier(issuer: IssuerStub, clock: FrozenClock) -> VerifierFactory:
    """TokenVerifier(cache, the issuer's iss and aud, frozen clock, **options)."""

    def factory(cache: JWKSCache, **options: Any) -> TokenVerifier:
        return TokenVerifier(
            cache, issuer=issuer.issuer, audiences=[issuer.audience], clock=clock, **options
        )

    return factory
