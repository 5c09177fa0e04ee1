"""The verified-token cache (DESIGN: "a repeated token >= 50x cheaper than the raw check").

A cache must never be a way around a check: a cached token is served only before its exp and
only while the key that verified it is still the published key for its kid (SECURITY_CASES
12 and 27 again, seen from the cache); the cache is keyed by the exact token string and
bounded in size.
"""

from __future__ import annotations

from typing import Any

import pytest
import respx

from backend.auth import Reason, TokenError, TokenVerifier
from backend.auth.testing import IssuerStub, generate_key
from tests.auth.support import Api, CacheFactory, VerifierFactory, signature_of, with_signature
from tests.conftest import FrozenClock

LEEWAY_S = 30
TTL_S = 300
COOLDOWN_S = 10


async def is_cache_hit(verifier: TokenVerifier, token: str) -> bool:
    """Verify `token` and tell whether the verified-token cache answered."""
    hits = verifier.cache_hits
    await verifier.verify(token)
    return verifier.cache_hits == hits + 1


class TestRepeatedToken:
    """A token already verified is served from the cache; a first sight never is. An edited
    copy of a cached token (SECURITY_CASES 6) and a refused token (SECURITY_CASES 16) are
    verified in full every time."""

    async def test_repeated_request_is_a_cache_hit(self, api: Api, user: dict[str, Any]) -> None:
        token = api.issuer.mint(user)
        hits = api.verifier.cache_hits
        await api.accepted(token, user=user)
        assert api.verifier.cache_hits == hits  # first sight: verified in full
        for expected in range(1, 6):
            await api.accepted(token, user=user)
            assert api.verifier.cache_hits == hits + expected
        assert api.fetches == 1

    async def test_cached_result_is_the_same_verification(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
    ) -> None:
        verifier = make_verifier(make_cache())
        token = issuer.mint()
        first = await verifier.verify(token)
        again = await verifier.verify(token)
        assert again is first
        assert verifier.cache_hits == 1

    async def test_edited_copy_is_not_served_from_the_cache(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        """The cache is keyed by the whole token: one flipped bit in the signature misses it
        and fails verification."""
        token = api.issuer.mint(user)
        await api.accepted(token, user=user)
        signature = bytearray(signature_of(token))
        signature[-1] ^= 0x01
        hits = api.verifier.cache_hits
        await api.refused(with_signature(token, bytes(signature)), reason=Reason.BAD_SIGNATURE)
        assert api.verifier.cache_hits == hits

    async def test_refused_tokens_are_not_cached(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        clock: FrozenClock,
    ) -> None:
        """A token refused for a claim stays refused when presented again."""
        verifier = make_verifier(make_cache())
        token = issuer.mint(iss="https://attacker.example")
        for _ in range(3):
            with pytest.raises(TokenError) as refused:
                await verifier.verify(token)
            assert refused.value.reason is Reason.BAD_ISSUER
        assert verifier.cache_hits == 0


class TestNeverPastExp:
    """A cached token is never served past its exp (SECURITY_CASES 12): at exp the cache
    misses and the full check (with its leeway) decides."""

    async def test_cache_misses_from_exp_on(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        clock: FrozenClock,
    ) -> None:
        verifier = make_verifier(make_cache())
        lifetime_s = 120  # shorter than the JWKS refresh, which would also end cache hits
        token = issuer.mint(lifetime_s=lifetime_s)
        await verifier.verify(token)
        clock.advance(lifetime_s - 1)
        assert await is_cache_hit(verifier, token)
        clock.advance(1)  # at exp: within the leeway, but not from the cache
        assert not await is_cache_hit(verifier, token)
        clock.advance(LEEWAY_S + 1)
        hits = verifier.cache_hits
        with pytest.raises(TokenError) as refused:
            await verifier.verify(token)
        assert refused.value.reason is Reason.EXPIRED
        assert verifier.cache_hits == hits

    async def test_expired_cached_token_over_http(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        token = api.issuer.mint(user, lifetime_s=60)
        await api.accepted(token, user=user)
        await api.accepted(token, user=user)
        hits = api.verifier.cache_hits
        clock.advance(60 + LEEWAY_S + 1)
        await api.refused(token, reason=Reason.EXPIRED)
        assert api.verifier.cache_hits == hits


class TestKeyLeavesTheJwks:
    """A cached token is not served once its key has left the JWKS, or once different key
    material is published under its kid (SECURITY_CASES 27)."""

    async def test_removed_key(self, api: Api, clock: FrozenClock, user: dict[str, Any]) -> None:
        old = api.issuer.signing_key
        token = api.issuer.mint(user, lifetime_s=3600)
        await api.accepted(token, user=user)
        await api.accepted(token, user=user)
        api.issuer.rotate()
        api.issuer.remove_key(old.kid)
        clock.advance(TTL_S + 1)
        await api.accepted(api.issuer.mint(user), user=user)  # the refresh happens here
        assert api.fetches == 2
        hits = api.verifier.cache_hits
        await api.refused(token, reason=Reason.UNKNOWN_KID)
        assert api.verifier.cache_hits == hits

    async def test_same_kid_new_material(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """The issuer re-keys under the same kid (say, its key table was restored): tokens of
        the old material are refused, cached or not."""
        old = api.issuer.signing_key
        token = api.issuer.mint(user, lifetime_s=3600)
        await api.accepted(token, user=user)
        replacement = generate_key("EdDSA", kid=old.kid)
        api.issuer.published = [replacement]
        api.issuer.signing_key = replacement
        clock.advance(TTL_S + 1)
        await api.accepted(api.issuer.mint(user), user=user)  # the refresh happens here
        assert api.fetches == 2
        hits = api.verifier.cache_hits
        await api.refused(token, reason=Reason.BAD_SIGNATURE)
        assert api.verifier.cache_hits == hits

    async def test_key_still_published_after_a_refresh(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        clock: FrozenClock,
    ) -> None:
        """Control: a refresh that republishes the key keeps the token valid (whether the
        first request after it is answered by the cache or by a full check)."""
        verifier = make_verifier(make_cache())
        token = issuer.mint(lifetime_s=3600)
        first = await verifier.verify(token)
        clock.advance(TTL_S + 1)
        again = await verifier.verify(token)
        assert again.sub == first.sub
        assert jwks_route.call_count == 2
        assert await is_cache_hit(verifier, token)

    async def test_tokens_stay_cached_across_a_refresh_that_keeps_the_key(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        clock: FrozenClock,
    ) -> None:
        """A routine refresh (every TTL) publishing the same key does not make every cached
        token pay a full check again: the key object is kept, so the cache still answers."""
        verifier = make_verifier(make_cache())
        tokens = [issuer.mint(lifetime_s=3600) for _ in range(3)]
        for token in tokens:
            await verifier.verify(token)
        clock.advance(TTL_S + 1)
        await verifier.verify(issuer.mint(lifetime_s=3600))  # waits for the refetch
        assert jwks_route.call_count == 2
        for token in tokens:
            assert await is_cache_hit(verifier, token)


class TestBoundedSize:
    """The cache holds at most AUTH_TOKEN_CACHE_SIZE tokens (expired ones are dropped first,
    then the oldest), so a stream of distinct valid tokens cannot grow memory (the flood of
    SECURITY_CASES 9, with valid tokens instead of random kids)."""

    async def test_oldest_tokens_are_evicted(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
    ) -> None:
        size = 10
        verifier = make_verifier(make_cache(), cache_size=size)
        tokens = [issuer.mint(jti=str(i)) for i in range(5 * size)]
        for token in tokens:
            await verifier.verify(token)
        assert len(verifier._cache) <= size
        assert await is_cache_hit(verifier, tokens[-1])
        assert not await is_cache_hit(verifier, tokens[0])

    async def test_expired_tokens_are_evicted_before_live_ones(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
        clock: FrozenClock,
    ) -> None:
        size = 10
        verifier = make_verifier(make_cache(), cache_size=size)
        for i in range(size):
            await verifier.verify(issuer.mint(jti=f"short-{i}", lifetime_s=60))
        clock.advance(61)
        live = [issuer.mint(jti=f"live-{i}", lifetime_s=3600) for i in range(size)]
        for token in live:
            await verifier.verify(token)
        assert len(verifier._cache) <= size
        for token in live:
            assert await is_cache_hit(verifier, token)

    async def test_size_zero_disables_the_cache(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
    ) -> None:
        """AUTH_TOKEN_CACHE_SIZE=0 (allowed by Settings): every token is verified in full."""
        verifier = make_verifier(make_cache(), cache_size=0)
        token = issuer.mint()
        for _ in range(3):
            await verifier.verify(token)
        assert verifier.cache_hits == 0
        assert len(verifier._cache) == 0
