"""The token verifier as the settings describe it. One place builds it, so the app and
`python -m backend.explain` can never disagree about what a valid token is."""

from __future__ import annotations

from typing import TypeVar

import httpx

from backend.auth import JWKSCache, TokenVerifier
from backend.auth.jwks import Clock
from backend.config import Settings

J = TypeVar("J", bound=JWKSCache)
V = TypeVar("V", bound=TokenVerifier)


def build_verifier(
    settings: Settings,
    client: httpx.AsyncClient,
    clock: Clock,
    jwks_type: type[J],
    verifier_type: type[V],
) -> tuple[J, V]:
    """The key cache and the verifier over it (types given, so the app can pass metered ones)."""
    jwks = jwks_type(
        settings.jwks_url,
        client=client,
        allowed_algorithms=settings.auth_algorithms,
        ttl_s=settings.jwks_ttl_s,
        cooldown_s=settings.jwks_cooldown_s,
        stale_s=settings.jwks_stale_s,
        timeout_s=settings.jwks_timeout_s,
        clock=clock,
    )
    verifier = verifier_type(
        jwks,
        issuer=settings.issuer,
        audiences=settings.audiences,
        algorithms=settings.auth_algorithms,
        leeway_s=settings.auth_leeway_s,
        max_lifetime_s=settings.auth_max_token_lifetime_s,
        max_token_bytes=settings.auth_max_token_bytes,
        cache_size=settings.auth_token_cache_size,
        clock=clock,
    )
    return jwks, verifier
