"""SECURITY_CASES 25-29: the JWKS endpoint fails, rotates, is stampeded or turns hostile.

Through HTTP where it is about what a client sees (503 + Retry-After rather than 401; /health
answering meanwhile); directly on JWKSCache / TokenVerifier where exact counts or hostile
bodies are easier to see there. respx is the only thing faked: the network. The clock is
frozen, so TTLs and cooldowns move only when a test moves them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from backend.auth import JWKSUnavailable, Reason, TokenError
from backend.auth.testing import IssuerStub, SigningKey, b64url, generate_key, sign_compact
from backend.config import Settings
from tests.auth.support import (
    Api,
    CacheFactory,
    SettingsFactory,
    VerifierFactory,
    assert_not_logged,
    forge_hmac,
    serve,
)
from tests.conftest import FrozenClock, settle

TTL_S = 300  # JWKS_TTL_S default
COOLDOWN_S = 10  # JWKS_COOLDOWN_S default
STALE_S = 86_400  # JWKS_STALE_S default
MAX_JWKS_BYTES = 64 * 1024
TEN_MB = 10 * 1024 * 1024

SideEffect = Callable[[httpx.Request], httpx.Response] | type[Exception]

OUTAGES: dict[str, SideEffect] = {
    "503": lambda request: httpx.Response(503, text="Service Unavailable"),
    "429": lambda request: httpx.Response(429, headers={"Retry-After": "10"}, text="slow down"),
    "500": lambda request: httpx.Response(500, text="Internal Server Error"),
    "404": lambda request: httpx.Response(404, text="Not Found"),
    "connect-timeout": httpx.ConnectTimeout,
    "connect-error": httpx.ConnectError,
    "read-timeout": httpx.ReadTimeout,
    "remote-protocol-error": httpx.RemoteProtocolError,
    "redirect": lambda request: httpx.Response(
        302, headers={"Location": "https://attacker.example/jwks.json"}
    ),
}
ATTACKER_JWKS_URL = "https://attacker.example/jwks.json"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serve_jwks(issuer: IssuerStub) -> Callable[[httpx.Request], httpx.Response]:
    """The side effect of a healthy JWKS endpoint (what IssuerStub.mock installs)."""
    return lambda request: httpx.Response(200, json=issuer.jwks())


def hang_counting(calls: list[float]) -> Callable[[httpx.Request], Any]:
    """An endpoint that accepts the connection and never answers (well: after a minute)."""

    async def hang(request: httpx.Request) -> httpx.Response:
        calls.append(asyncio.get_running_loop().time())
        await asyncio.sleep(60)
        return httpx.Response(503)

    return hang


def assert_outage_answer(response: httpx.Response) -> None:
    """503 with Retry-After, and nothing that would make a client sign the user out."""
    assert response.status_code == 503, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= COOLDOWN_S
    assert "www-authenticate" not in response.headers


class TestColdCacheOutage:
    """SECURITY_CASES 25: cold cache (the start-up warm-up fails too) and the JWKS answers
    503 / 429 / an error / nothing: a well-formed token gets 503 + Retry-After (not 401), within
    the fetch timeout, while /health keeps answering."""

    @pytest.mark.parametrize("outage", sorted(OUTAGES))
    async def test_outage(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
        outage: str,
    ) -> None:
        route = jwks_mock.get(issuer.jwks_url).mock(side_effect=OUTAGES[outage])
        trap = jwks_mock.get(ATTACKER_JWKS_URL).mock(return_value=httpx.Response(200))
        token = issuer.mint(user)
        async with serve(settings, clock) as (app, client):
            caplog.set_level("DEBUG", logger="backend")
            await settle(app)
            assert route.call_count == 1  # the warm-up's fetch
            assert_outage_answer(await client.get("/api/me", headers=bearer(token)))
            assert route.call_count == 1  # the request fell in the cooldown that followed it
            assert (await client.get("/health")).status_code == 200
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["signing_keys"] != "ok"
        assert not trap.called  # redirects are not followed
        assert_not_logged(caplog.records, token)

    async def test_request_during_the_failing_first_fetch(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A request that arrives while the first fetch is under way waits for it (no second
        fetch), then gets 503."""
        gate = asyncio.Event()

        async def slow_503(request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return httpx.Response(503)

        route = jwks_mock.get(issuer.jwks_url).mock(side_effect=slow_503)
        token = issuer.mint(user)
        async with serve(settings, clock) as (_, client):
            caplog.set_level("DEBUG", logger="backend")
            me = asyncio.create_task(client.get("/api/me", headers=bearer(token)))
            assert (await client.get("/health")).status_code == 200
            assert not me.done()
            gate.set()
            assert_outage_answer(await me)
        assert route.call_count == 1
        assert_not_logged(caplog.records, token)

    async def test_hanging_endpoint_is_cut_by_the_timeout(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        make_settings: SettingsFactory,
        clock: FrozenClock,
        user: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The JWKS accepts the connection and never answers: /health answers at once, and
        /api/me gets its 503 when JWKS_TIMEOUT_S cuts the fetch (not after the hang)."""
        timeout_s = 0.3
        calls: list[float] = []
        jwks_mock.get(issuer.jwks_url).mock(side_effect=hang_counting(calls))
        loop = asyncio.get_running_loop()
        token = issuer.mint(user)
        async with serve(make_settings(jwks_timeout_s=timeout_s), clock) as (app, client):
            caplog.set_level("DEBUG", logger="backend")
            started = loop.time()
            me = asyncio.create_task(client.get("/api/me", headers=bearer(token)))
            assert (await client.get("/health")).status_code == 200
            assert not me.done()  # /health answered while the fetch was hanging
            response = await me
            elapsed = loop.time() - started
            assert_outage_answer(response)
            assert app.state.jwks.last_error == "timed out"
        assert len(calls) == 1
        assert elapsed < 10 * timeout_s  # loosely: cut by the timeout, far short of the hang
        assert_not_logged(caplog.records, token)

    async def test_fetch_is_cut_by_the_timeout(
        self, issuer: IssuerStub, jwks_mock: respx.Router, make_cache: CacheFactory
    ) -> None:
        """The same on JWKSCache itself: the fetch ends at timeout_s with JWKSUnavailable."""
        calls: list[float] = []
        jwks_mock.get(issuer.jwks_url).mock(side_effect=hang_counting(calls))
        cache = make_cache(timeout_s=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(JWKSUnavailable) as unavailable:
            await cache.get(issuer.signing_key.kid)
        assert loop.time() - started < 2.0
        assert cache.last_error == "timed out"
        assert unavailable.value.retry_after_s >= 1
        assert cache.fetch_count == len(calls) == 1
        assert not cache.loaded

    async def test_recovers_when_the_keys_come_back(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
    ) -> None:
        """The 503 is not sticky: once the cooldown has passed, the next request fetches."""
        route = jwks_mock.get(issuer.jwks_url).mock(side_effect=httpx.ConnectError)
        token = issuer.mint(user)
        async with serve(settings, clock) as (app, client):
            await settle(app)
            assert_outage_answer(await client.get("/api/me", headers=bearer(token)))
            route.mock(side_effect=serve_jwks(issuer))
            clock.advance(COOLDOWN_S)
            response = await client.get("/api/me", headers=bearer(token))
            assert response.status_code == 200, response.text
            assert (await client.get("/ready")).status_code == 200


FAST_OUTAGES = sorted(OUTAGES)


class TestStaleIfError:
    """SECURITY_CASES 26: warm cache, TTL passed, JWKS down: a known kid is still accepted
    (stale-if-error, bounded by JWKS_STALE_S), and a failed fetch never wipes the keys."""

    @pytest.mark.parametrize("outage", FAST_OUTAGES)
    async def test_known_kid_after_the_ttl(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], outage: str
    ) -> None:
        seen = api.issuer.mint(user)
        await api.accepted(seen, user=user)
        api.route.mock(side_effect=OUTAGES[outage])
        clock.advance(TTL_S + 1)
        await api.accepted(seen, user=user)
        await api.accepted(api.issuer.mint(user), user=user)  # first seen during the outage
        assert api.fetches == 2  # the warm-up, then one attempt: the rest is cooldown
        assert api.jwks.loaded
        assert api.jwks.last_error is not None

    async def test_keeps_trying_once_per_cooldown(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        api.route.mock(side_effect=httpx.ConnectError)
        clock.advance(TTL_S + 1)
        for attempt in range(3):
            for i in range(5):
                await api.accepted(api.issuer.mint(user, jti=f"{attempt}-{i}"), user=user)
            assert api.fetches == 2 + attempt
            clock.advance(COOLDOWN_S)

    async def test_refresh_ahead_failure_is_invisible(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Refresh ahead of expiry (80 % of the TTL) fails in the background: requests are
        answered from the keys on hand and never wait for it."""
        api.route.mock(side_effect=httpx.ConnectError)
        clock.advance(TTL_S * 0.8 + 1)
        await api.accepted(api.issuer.mint(user), user=user)
        await settle(api.app)
        assert api.fetches == 2
        assert api.issuer.signing_key.kid in api.jwks.keys
        await api.accepted(api.issuer.mint(user, jti="again"), user=user)

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"keys": []}, id="empty-key-set"),
            pytest.param(
                {"keys": [{"kty": "oct", "alg": "HS256", "kid": "h", "k": "c2VjcmV0"}]},
                id="only-unusable-keys",
            ),
            pytest.param({"error": "maintenance"}, id="no-keys-member"),
        ],
    )
    async def test_an_empty_answer_does_not_wipe_the_keys(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], body: dict[str, Any]
    ) -> None:
        api.route.mock(return_value=httpx.Response(200, json=body))
        clock.advance(TTL_S + 1)
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == 2
        assert list(api.jwks.keys) == [api.issuer.signing_key.kid]

    async def test_beyond_the_stale_bound(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Past JWKS_STALE_S without a successful fetch, the keys are no longer trusted: 503
        (an outage, still not a 401)."""
        api.route.mock(side_effect=httpx.ConnectError)
        clock.advance(STALE_S + 1)
        token = api.issuer.mint(user)
        response = await api.me(token)
        assert_outage_answer(response)
        assert (await api.client.get("/health")).status_code == 200
        assert (await api.client.get("/ready")).status_code == 503


class TestKeyRotation:
    """SECURITY_CASES 27: a new kid is accepted after exactly one refetch; the old kid keeps
    working while published; a kid removed from the JWKS is refused once the TTL has passed."""

    async def test_new_kid_after_one_refetch(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        old = api.issuer.signing_key
        clock.advance(COOLDOWN_S)  # not within seconds of the last fetch (the warm-up)
        api.issuer.rotate()
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == 2
        await api.accepted(api.issuer.mint(user, key=old), user=user)  # still published
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == 2

    async def test_new_kid_seen_by_many_at_once(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        clock.advance(COOLDOWN_S)
        api.issuer.rotate()
        tokens = [api.issuer.mint(user, jti=str(i)) for i in range(50)]
        api.keep_secret(*tokens)
        responses = await asyncio.gather(
            *(api.client.get("/api/me", headers=bearer(token)) for token in tokens)
        )
        assert [response.status_code for response in responses] == [200] * 50
        assert api.fetches == 2
        api.assert_nothing_logged()

    @pytest.mark.parametrize("alg", ["ES256", "ES512", "RS256", "PS256"])
    async def test_rotation_to_another_algorithm(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], alg: str
    ) -> None:
        clock.advance(COOLDOWN_S)
        api.issuer.rotate(alg)
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == 2

    async def test_new_kid_right_after_a_fetch(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Within the cooldown of the last fetch a new kid may be refused (DESIGN: "within
        JWKS_COOLDOWN_S at worst"), never with a 5xx, and is accepted once it has passed."""
        api.issuer.rotate()
        token = api.issuer.mint(user)
        response = await api.me(token)
        assert response.status_code in (200, 401)
        clock.advance(COOLDOWN_S)
        await api.accepted(token, user=user)
        assert api.fetches == 2

    async def test_removed_kid_is_refused_after_the_ttl(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        old = api.issuer.signing_key
        seen = api.issuer.mint(user)
        await api.accepted(seen, user=user)
        clock.advance(COOLDOWN_S)
        api.issuer.rotate()
        await api.accepted(api.issuer.mint(user), user=user)
        api.issuer.remove_key(old.kid)

        clock.advance(TTL_S + 1)
        fresh_old = api.issuer.mint(user, key=old)
        await api.refused(fresh_old, reason=Reason.UNKNOWN_KID, fetches=1)
        await api.refused(seen, reason=Reason.UNKNOWN_KID, fetches=0)  # cached before: not now
        await api.accepted(api.issuer.mint(user), user=user)
        assert old.kid not in api.jwks.keys

    async def test_removed_kid_is_not_refetched_for_each_request(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        old = api.issuer.signing_key
        clock.advance(COOLDOWN_S)
        api.issuer.rotate()
        api.issuer.remove_key(old.kid)
        clock.advance(TTL_S + 1)
        before = api.fetches
        for i in range(20):
            await api.refused(
                api.issuer.mint(user, key=old, jti=str(i)), reason=Reason.UNKNOWN_KID, fetches=None
            )
        assert api.fetches - before == 1


class TestColdCacheStampede:
    """SECURITY_CASES 28: 100 concurrent requests on a cold cache make exactly one JWKS fetch
    (single flight), whether it succeeds or fails."""

    async def test_one_fetch_for_a_hundred_requests(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async def slow_jwks(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.05)
            return httpx.Response(200, json=issuer.jwks())

        route = jwks_mock.get(issuer.jwks_url).mock(side_effect=slow_jwks)
        tokens = [issuer.mint(user, jti=str(i)) for i in range(100)]
        async with serve(settings, clock) as (app, client):
            caplog.set_level("DEBUG", logger="backend")
            assert app.state.jwks.fetch_count <= 1  # only the warm-up, if it has started
            responses = await asyncio.gather(
                *(client.get("/api/me", headers=bearer(token)) for token in tokens)
            )
            assert [response.status_code for response in responses] == [200] * 100
            assert app.state.jwks.fetch_count == 1
        assert route.call_count == 1
        assert_not_logged(caplog.records, *tokens)

    async def test_one_fetch_for_a_hundred_requests_when_it_fails(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
    ) -> None:
        async def slow_503(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.05)
            return httpx.Response(503)

        route = jwks_mock.get(issuer.jwks_url).mock(side_effect=slow_503)
        tokens = [issuer.mint(user, jti=str(i)) for i in range(100)]
        async with serve(settings, clock) as (_, client):
            responses = await asyncio.gather(
                *(client.get("/api/me", headers=bearer(token)) for token in tokens)
            )
            for response in responses:
                assert_outage_answer(response)
        assert route.call_count == 1

    @pytest.mark.parametrize("kids", ["known", "unknown", "mixed"])
    async def test_cache_single_flight(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        kids: str,
    ) -> None:
        """On JWKSCache itself: 100 concurrent lookups on a cold cache, one fetch."""
        cache = make_cache()
        known = issuer.signing_key.kid
        wanted = {
            "known": [known] * 100,
            "unknown": [f"unknown-{i}" for i in range(100)],
            "mixed": [known if i % 2 else f"unknown-{i}" for i in range(100)],
        }[kids]
        results = await asyncio.gather(*(cache.get(kid) for kid in wanted), return_exceptions=True)
        for kid, result in zip(wanted, results, strict=True):
            if kid == known:
                assert not isinstance(result, BaseException)
                assert result.kid == known
            else:
                assert isinstance(result, TokenError)
                assert result.reason is Reason.UNKNOWN_KID
        assert cache.fetch_count == 1
        assert jwks_route.call_count == 1

    async def test_verifier_single_flight(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        make_verifier: VerifierFactory,
    ) -> None:
        verifier = make_verifier(make_cache())
        tokens = [issuer.mint(jti=str(i)) for i in range(100)]
        verified = await asyncio.gather(*(verifier.verify(token) for token in tokens))
        assert len({v.sub for v in verified}) == 100
        assert jwks_route.call_count == 1


# -- SECURITY_CASES 29: hostile key sets ---------------------------------------------------
async def chunks(total: int, produced: list[int]) -> AsyncIterator[bytes]:
    """A chunked body of `total` bytes with no Content-Length; counts what was produced."""
    yield b'{"keys":['
    chunk = b" " * 65_536
    for _ in range(total // len(chunk)):
        produced.append(len(chunk))
        yield chunk
    yield b"]}"


def many_keys(count: int, *, small: bool) -> list[dict[str, Any]]:
    """`count` distinct, individually valid Ed25519 JWKs (`small`: minimal members)."""
    keys = []
    for i in range(count):
        jwk = generate_key("EdDSA", kid=f"k{i}").jwk
        keys.append({k: jwk[k] for k in ("kty", "crv", "x", "alg", "kid")} if small else jwk)
    return keys


DocumentBuilder = Callable[[dict[str, Any], list[int]], httpx.Response]
"""(a good JWK, a counter of streamed bytes) -> the hostile answer."""

HOSTILE_DOCUMENTS: dict[str, DocumentBuilder] = {
    "html": lambda good, produced: httpx.Response(
        200, html="<html><body>502 Bad Gateway</body></html>"
    ),
    "invalid-utf8": lambda good, produced: httpx.Response(
        200, content=b'{"keys":[' + json.dumps(good).encode() + b',"\xff\xfe"]}'
    ),
    "json-null": lambda good, produced: httpx.Response(200, json=None),
    "json-array": lambda good, produced: httpx.Response(200, json=[good]),
    "json-string": lambda good, produced: httpx.Response(200, json="keys"),
    "keys-null": lambda good, produced: httpx.Response(200, json={"keys": None}),
    "keys-object": lambda good, produced: httpx.Response(200, json={"keys": {"0": good}}),
    "keys-string": lambda good, produced: httpx.Response(200, json={"keys": "none"}),
    "empty-keys": lambda good, produced: httpx.Response(200, json={"keys": []}),
    "truncated": lambda good, produced: httpx.Response(
        200, content=json.dumps({"keys": [good]}).encode()[:-5]
    ),
    "10MB-declared": lambda good, produced: httpx.Response(
        200, content=json.dumps({"keys": [good]}).encode() + b" " * TEN_MB
    ),
    "10MB-streamed": lambda good, produced: httpx.Response(200, content=chunks(TEN_MB, produced)),
    "gzip-bomb": lambda good, produced: httpx.Response(
        200,
        headers={"Content-Encoding": "gzip"},
        content=gzip.compress(json.dumps({"keys": [good]}).encode() + b" " * TEN_MB),
    ),
    "1000-keys": lambda good, produced: httpx.Response(
        200, json={"keys": [good, *many_keys(999, small=False)]}
    ),
    "101-small-keys": lambda good, produced: httpx.Response(
        200, json={"keys": [good, *many_keys(100, small=True)]}
    ),
    "deeply-nested": lambda good, produced: httpx.Response(
        200, content=b'{"keys":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    ),
    "4301-digit-number": lambda good, produced: httpx.Response(
        200, content=b'{"keys":[' + json.dumps(good).encode() + b'],"n":' + b"9" * 4301 + b"}"
    ),
}


def rsa_1024() -> SigningKey:
    return generate_key("RS256", rsa_bits=1024)


def private_jwk(key: SigningKey) -> dict[str, Any]:
    """The whole key pair as a JWK (`d`, and for RSA `p`, `q`, `dp`, `dq`, `qi`)."""
    private = key.algorithm.to_jwk(key.private_key, as_dict=True)
    return {**private, "alg": key.alg, "kid": key.kid}


def mislabelled_ec(alg: str, curve_alg: str, kid: str) -> dict[str, Any]:
    """An EC key of one curve published with another curve's alg."""
    key = generate_key(curve_alg, kid=kid)
    return {**key.jwk, "alg": alg}


def ec_with_lying_crv() -> dict[str, Any]:
    jwk = generate_key("ES384", kid="lying-crv").jwk
    return {**jwk, "alg": "ES256", "crv": "P-256"}


def tweak(**members: Any) -> Callable[[], dict[str, Any]]:
    """A valid Ed25519 JWK (kid "hostile") with some members changed (None: removed)."""

    def build() -> dict[str, Any]:
        jwk = {**generate_key("EdDSA", kid="hostile").jwk, **members}
        return {name: value for name, value in jwk.items() if value is not None}

    return build


HOSTILE_KEYS: dict[str, Callable[[], Any]] = {
    "oct-HS256": lambda: {"kty": "oct", "alg": "HS256", "kid": "hostile", "k": b64url(b"secret")},
    "oct-without-alg": lambda: {"kty": "oct", "kid": "hostile", "k": b64url(b"secret")},
    "okp-labelled-HS256": tweak(alg="HS256"),
    "alg-none": tweak(alg="none"),
    "alg-missing": tweak(alg=None),
    "alg-lowercase": tweak(alg="eddsa"),
    "kid-missing": tweak(kid=None),
    "kid-empty": tweak(kid=""),
    "kid-number": tweak(kid=7),
    "kid-300-chars": tweak(kid="k" * 300),
    "use-enc": tweak(use="enc"),
    "key-ops-encrypt": tweak(key_ops=["encrypt"]),
    "key-ops-not-a-list": tweak(key_ops="verify"),
    "eddsa-on-ec": tweak(kty="EC"),
    "x25519": tweak(crv="X25519"),
    "ed448": tweak(crv="Ed448"),
    "x-not-base64": tweak(x="!!!not base64!!!"),
    "x-too-short": tweak(x=b64url(b"\x01" * 31)),
    "x-number": tweak(x=12345),
    "okp-with-private-d": lambda: private_jwk(generate_key("EdDSA", kid="hostile")),
    "rsa-with-private-members": lambda: private_jwk(shared_rsa()),
    "rsa-1024": lambda: {**rsa_1024().jwk, "kid": "hostile"},
    "rsa-e-1": lambda: {**shared_rsa().jwk, "kid": "hostile", "e": b64url(b"\x01")},
    "ec-P384-labelled-ES256": lambda: mislabelled_ec("ES256", "ES384", "hostile"),
    "ec-P256-labelled-ES512": lambda: mislabelled_ec("ES512", "ES256", "hostile"),
    "ec-crv-lies-about-the-point": ec_with_lying_crv,
    "not-an-object": lambda: "hostile",
    "null": lambda: None,
    "list": lambda: [{"kty": "OKP"}],
}


_RSA: list[SigningKey] = []


def shared_rsa() -> SigningKey:
    if not _RSA:
        _RSA.append(generate_key("RS256", kid="hostile"))
    return _RSA[0]


class TestHostileKeySets:
    """SECURITY_CASES 29: hostile JWKS answers (not JSON, 10 MB, 1000 keys, `kty: oct`, HS
    algs, RSA-1024, EC keys whose alg does not fit their curve, private keys...) make the
    fetch fail or the bad keys be ignored; nothing crashes, and a warm cache keeps its keys."""

    @pytest.mark.parametrize("document", sorted(HOSTILE_DOCUMENTS))
    async def test_hostile_document_on_a_cold_cache(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        make_cache: CacheFactory,
        document: str,
    ) -> None:
        produced: list[int] = []
        answer = HOSTILE_DOCUMENTS[document](issuer.signing_key.jwk, produced)
        route = jwks_mock.get(issuer.jwks_url).mock(return_value=answer)
        cache = make_cache()
        with pytest.raises(JWKSUnavailable):
            await cache.get(issuer.signing_key.kid)
        assert route.call_count == 1
        assert not cache.loaded
        assert cache.last_error
        assert sum(produced) <= 2 * MAX_JWKS_BYTES  # a streamed body is cut off at the cap

    @pytest.mark.parametrize("document", sorted(HOSTILE_DOCUMENTS))
    async def test_hostile_document_on_a_warm_cache(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        clock: FrozenClock,
        document: str,
    ) -> None:
        cache = make_cache()
        good = await cache.get(issuer.signing_key.kid)
        jwks_route.mock(return_value=HOSTILE_DOCUMENTS[document](issuer.signing_key.jwk, []))
        clock.advance(TTL_S + 1)
        assert await cache.get(issuer.signing_key.kid) is good
        assert jwks_route.call_count == 2
        assert dict(cache.keys) == {good.kid: good}
        assert cache.loaded

    @pytest.mark.parametrize("hostile", sorted(HOSTILE_KEYS))
    async def test_hostile_key_beside_a_good_one(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        make_cache: CacheFactory,
        hostile: str,
    ) -> None:
        good = issuer.signing_key.jwk
        body = {"keys": [HOSTILE_KEYS[hostile](), good]}
        jwks_mock.get(issuer.jwks_url).mock(return_value=httpx.Response(200, json=body))
        cache = make_cache()
        assert (await cache.get(good["kid"])).kid == good["kid"]
        assert list(cache.keys) == [good["kid"]]
        with pytest.raises(TokenError) as refused:
            await cache.get("hostile")
        assert refused.value.reason is Reason.UNKNOWN_KID
        assert cache.fetch_count == 1

    @pytest.mark.parametrize("hostile", sorted(HOSTILE_KEYS))
    async def test_hostile_key_alone(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        make_cache: CacheFactory,
        hostile: str,
    ) -> None:
        body = {"keys": [HOSTILE_KEYS[hostile]()]}
        jwks_mock.get(issuer.jwks_url).mock(return_value=httpx.Response(200, json=body))
        cache = make_cache()
        with pytest.raises(JWKSUnavailable):
            await cache.get("hostile")
        assert cache.last_error == "no usable key in the key set"

    async def test_hmac_key_under_our_kid_listed_first(
        self, issuer: IssuerStub, jwks_mock: respx.Router, make_cache: CacheFactory
    ) -> None:
        """An `oct` key claiming our kid, ahead of ours: ignored, ours is used."""
        ours = issuer.signing_key
        decoy = {"kty": "oct", "alg": "HS256", "kid": ours.kid, "k": b64url(b"secret")}
        body = {"keys": [decoy, ours.jwk]}
        jwks_mock.get(issuer.jwks_url).mock(return_value=httpx.Response(200, json=body))
        cache = make_cache()
        key = await cache.get(ours.kid)
        assert key.alg == "EdDSA"
        assert key.public_key.public_bytes_raw() == ours.public_key.public_bytes_raw()


class TestHostileKeySetsOverHttp:
    """SECURITY_CASES 29 as a client sees it: tokens signed with the hostile keys get 401,
    genuine ones 200; a cold app with a hostile JWKS answers 503, never 500."""

    async def test_tokens_of_ignored_keys(
        self,
        issuer: IssuerStub,
        api: Api,
        clock: FrozenClock,
        user: dict[str, Any],
    ) -> None:
        weak = generate_key("RS256", kid="weak", rsa_bits=1024)
        p384 = generate_key("ES384", kid="p384-as-es256")
        secret = b"published-hmac-secret"
        hostile = [
            {"kty": "oct", "alg": "HS256", "kid": "hmac", "k": b64url(secret)},
            weak.jwk,
            {**p384.jwk, "alg": "ES256"},
        ]
        api.route.mock(
            side_effect=lambda request: httpx.Response(
                200, json={"keys": [*hostile, *issuer.jwks()["keys"]]}
            )
        )
        clock.advance(TTL_S + 1)
        await api.accepted(issuer.mint(user), user=user)  # refetched: hostile keys ignored
        assert api.fetches == 2
        claims = issuer.claims(user)
        await api.refused(
            forge_hmac({"alg": "HS256", "kid": "hmac"}, claims, secret),
            reason=Reason.ALG_NOT_ALLOWED,
        )
        await api.refused(issuer.mint(user, key=weak), reason=Reason.UNKNOWN_KID)
        es384_as_es256 = sign_compact({"alg": "ES384", "kid": p384.kid}, claims, p384)
        await api.refused(es384_as_es256, reason=Reason.UNKNOWN_KID)
        assert api.fetches == 2

    @pytest.mark.parametrize("document", ["html", "10MB-declared", "1000-keys", "deeply-nested"])
    async def test_hostile_document_after_the_ttl(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], document: str
    ) -> None:
        api.route.mock(return_value=HOSTILE_DOCUMENTS[document](api.issuer.signing_key.jwk, []))
        clock.advance(TTL_S + 1)
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == 2

    @pytest.mark.parametrize("document", ["html", "10MB-streamed", "gzip-bomb", "empty-keys"])
    async def test_hostile_document_on_a_cold_app(
        self,
        issuer: IssuerStub,
        jwks_mock: respx.Router,
        settings: Settings,
        clock: FrozenClock,
        user: dict[str, Any],
        document: str,
    ) -> None:
        jwks_mock.get(issuer.jwks_url).mock(
            side_effect=lambda request: HOSTILE_DOCUMENTS[document](issuer.signing_key.jwk, [])
        )
        async with serve(settings, clock) as (app, client):
            await settle(app)
            assert_outage_answer(await client.get("/api/me", headers=bearer(issuer.mint(user))))
            assert (await client.get("/health")).status_code == 200
