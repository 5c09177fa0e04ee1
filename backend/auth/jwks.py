"""A cache of the issuer's public keys (Better Auth's /api/auth/jwks), fetched with httpx.

Behaviour, after panva/jose's remote JWKS and RFC 8725:
- keys are fetched once and kept for a TTL (Cache-Control max-age, clamped, else the default);
  a refresh starts in the background ahead of expiry, so requests rarely wait for the network;
- one fetch at a time (single flight): concurrent callers share it;
- an unknown `kid` causes at most one refetch per cooldown window, and is remembered briefly,
  so a flood of random kids cannot make us hammer the issuer (or trip its rate limiter);
- a failed fetch never wipes the keys on hand: they stay usable for a bounded stale period;
- only asymmetric keys with exactly one algorithm (their JWK `alg`) are kept, each bound to a
  verify function once, when the key set is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from backend.auth.errors import JWKSUnavailable, Reason, TokenError

log = logging.getLogger("backend.auth.jwks")

# alg -> (kty, crv). The only algorithms we ever verify: asymmetric, as Better Auth issues them.
KEY_TYPES: Mapping[str, tuple[str, str | None]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}
SUPPORTED_ALGORITHMS = frozenset(KEY_TYPES)
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 256
_PRIVATE_PARAMS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)

Clock = Callable[[], float]


# How a fetch ended: the keys of JWKSCache.fetch_results (a closed list, fit for metric labels).
FETCH_RESULTS = ("ok", "timeout", "http_error", "network_error", "invalid", "cancelled")


class JWKSFetchError(Exception):
    """The key set could not be fetched or was unusable; the keys on hand stay. `result` says
    which kind of failure (one of FETCH_RESULTS); the message says exactly what happened."""

    def __init__(self, detail: str, result: str = "invalid") -> None:
        super().__init__(detail)
        self.result = result


class InvalidJWK(ValueError):
    """One key of the set is unusable (and is skipped)."""


Verify = Callable[[bytes, bytes], bool]
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


@dataclass(frozen=True, slots=True, eq=False)
class VerificationKey:
    """A public key bound to its one algorithm. Compared by identity: a refetch keeps the
    object of a kid published unchanged (so tokens verified with it stay cached), and one
    that drops a kid, or publishes different material under it, yields new objects."""

    kid: str
    alg: str
    public_key: Any
    verify: Verify  # (signing input, signature) -> valid?
    material: tuple[Any, ...] = ()  # what makes the key this key: alg and public JWK members


def bind_verifier(alg: str, public_key: Any) -> Verify:
    """A verify function for this key and alg, with padding and hash objects built once
    (the per-call work is then the cryptography call itself)."""
    if alg == "EdDSA":
        ed_key: ed25519.Ed25519PublicKey = public_key

        def verify_eddsa(message: bytes, signature: bytes) -> bool:
            try:
                ed_key.verify(signature, message)
            except InvalidSignature:
                return False
            return True

        return verify_eddsa
    digest = _HASHES[alg[2:]]()
    if alg.startswith("ES"):
        ec_key: ec.EllipticCurvePublicKey = public_key
        ecdsa = ec.ECDSA(digest)
        size = (ec_key.curve.key_size + 7) // 8

        def verify_ecdsa(message: bytes, signature: bytes) -> bool:
            # JWS carries r || s (RFC 7518 3.4); cryptography wants DER.
            if len(signature) != 2 * size:
                return False
            r, s = int.from_bytes(signature[:size]), int.from_bytes(signature[size:])
            try:
                ec_key.verify(encode_dss_signature(r, s), message, ecdsa)
            except InvalidSignature:
                return False
            return True

        return verify_ecdsa
    rsa_key: rsa.RSAPublicKey = public_key
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg.startswith("RS")
        else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
    )

    def verify_rsa(message: bytes, signature: bytes) -> bool:
        try:
            rsa_key.verify(signature, message, scheme, digest)
        except InvalidSignature:
            return False
        return True

    return verify_rsa


def parse_jwk(jwk: object, allowed_algorithms: Collection[str]) -> VerificationKey:
    """One JWK -> VerificationKey, refusing anything we would not sign-check with."""
    if not isinstance(jwk, dict):
        raise InvalidJWK("not an object")
    kid, alg, kty = jwk.get("kid"), jwk.get("alg"), jwk.get("kty")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        raise InvalidJWK("missing or invalid kid")
    if not isinstance(alg, str) or alg not in KEY_TYPES or alg not in allowed_algorithms:
        raise InvalidJWK(f"kid {kid!r}: alg {alg!r} is not an allowed asymmetric algorithm")
    expected_kty, expected_crv = KEY_TYPES[alg]
    if kty != expected_kty:
        raise InvalidJWK(f"kid {kid!r}: kty {kty!r} does not fit alg {alg}")
    if expected_crv is not None and jwk.get("crv") != expected_crv:
        raise InvalidJWK(f"kid {kid!r}: crv {jwk.get('crv')!r} does not fit alg {alg}")
    if jwk.get("use", "sig") != "sig":
        raise InvalidJWK(f"kid {kid!r}: use is not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise InvalidJWK(f"kid {kid!r}: key_ops does not allow verify")
    if _PRIVATE_PARAMS & jwk.keys():
        raise InvalidJWK(f"kid {kid!r}: carries private key material")
    try:
        parsed = PyJWK(jwk, algorithm=alg)
    except (PyJWTError, ValueError, TypeError) as exc:
        raise InvalidJWK(f"kid {kid!r}: {exc}") from None
    public_key = parsed.key
    if not isinstance(
        public_key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    ):
        raise InvalidJWK(f"kid {kid!r}: not a public key")
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        raise InvalidJWK(f"kid {kid!r}: RSA key of {public_key.key_size} bits is too small")
    material = (alg, *(jwk.get(name) for name in ("kty", "crv", "x", "y", "n", "e")))
    return VerificationKey(
        kid=kid,
        alg=alg,
        public_key=public_key,
        verify=bind_verifier(alg, public_key),
        material=material,
    )


def parse_jwks(
    body: bytes, allowed_algorithms: Collection[str], max_keys: int
) -> dict[str, VerificationKey]:
    """A JWKS document -> usable keys by kid. Unusable keys are skipped (and logged)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise JWKSFetchError(f"not JSON: {exc}") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JWKSFetchError("no 'keys' array")
    if len(keys) > max_keys:
        raise JWKSFetchError(f"{len(keys)} keys, more than the cap of {max_keys}")
    usable: dict[str, VerificationKey] = {}
    for jwk in keys:
        try:
            key = parse_jwk(jwk, allowed_algorithms)
        except InvalidJWK as exc:
            log.warning("jwks key skipped: %s", exc)
            continue
        if key.kid in usable:  # ambiguous: keep the first, as the issuer lists newest first
            log.warning("jwks key skipped: duplicate kid %r", key.kid)
            continue
        usable[key.kid] = key
    return usable


def cache_ttl(headers: httpx.Headers, default_s: float) -> float:
    """Cache-Control max-age within [60 s, 24 h], else the default (Better Auth sends none)."""
    match = _MAX_AGE.search(headers.get("cache-control", ""))
    if match is None:
        return default_s
    return float(min(max(int(match.group(1)), 60), 86_400))


class JWKSCache:
    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        allowed_algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
        ttl_s: float = 300.0,
        cooldown_s: float = 10.0,
        stale_s: float = 86_400.0,
        timeout_s: float = 5.0,
        max_bytes: int = 64 * 1024,
        max_keys: int = 100,
        clock: Clock = time.time,
    ) -> None:
        self.url = url
        self._client = client
        self._allowed = frozenset(allowed_algorithms)
        self._ttl_s = ttl_s
        self._cooldown_s = cooldown_s
        self._stale_s = stale_s
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._max_keys = max_keys
        self._clock = clock

        self._keys: dict[str, VerificationKey] = {}
        self._loaded = False
        self._refresh_at = -math.inf  # start a background refresh from here on
        self._fresh_until = -math.inf  # past this, wait for a refetch (keep keys if it fails)
        self._usable_until = -math.inf  # stale-if-error bound
        self._last_attempt = -math.inf
        self._last_failed = False
        self._unknown_kids: dict[str, float] = {}
        self._inflight: asyncio.Task[None] | None = None
        self.fetch_count = 0  # fetches started
        self.fetch_results: dict[str, int] = dict.fromkeys(FETCH_RESULTS, 0)  # fetches ended
        self.last_error: str | None = None

    # -- state, for /ready and the verifier's hot path ------------------------------------
    @property
    def loaded(self) -> bool:
        """Keys are on hand and still within the stale-if-error bound."""
        return self._loaded and self._clock() < self._usable_until

    @property
    def keys(self) -> Mapping[str, VerificationKey]:
        return self._keys

    def is_current(self, key: VerificationKey, now: float) -> bool:
        """Still the published key for its kid, and no refresh due: the cache-hit check."""
        return now < self._refresh_at and self._keys.get(key.kid) is key

    # -- lookups --------------------------------------------------------------------------
    async def get(self, kid: str) -> VerificationKey:
        """The key for `kid`. TokenError if the issuer has no such key; JWKSUnavailable if
        there is no usable key and the issuer cannot be reached."""
        now = self._clock()
        if now >= self._refresh_at:
            await self._maintain(now)
        key = self._keys.get(kid)
        if key is not None:
            return key
        return await self._unknown_kid(kid, self._clock())

    async def _maintain(self, now: float) -> None:
        if not self._loaded or now >= self._usable_until:
            await self._fetch_or_unavailable(now)
        elif now >= self._fresh_until:
            if self._may_fetch(now):
                with contextlib.suppress(JWKSFetchError):  # stale-if-error: keys on hand stay
                    await self.refresh()
        else:
            self.refresh_in_background()

    async def _fetch_or_unavailable(self, now: float) -> None:
        if not self._may_fetch(now) and self._inflight is None:
            raise JWKSUnavailable(
                f"signing keys unavailable: {self.last_error}", self._retry_after(now)
            )
        try:
            await self.refresh()
        except JWKSFetchError as exc:
            raise JWKSUnavailable(
                f"signing keys unavailable: {exc}", self._retry_after(self._clock())
            ) from None

    async def _unknown_kid(self, kid: str, now: float) -> VerificationKey:
        if self._unknown_kids.get(kid, -math.inf) > now:
            raise TokenError(Reason.UNKNOWN_KID, "kid recently looked up and not found")
        if self._inflight is None and not self._may_fetch(now):
            if self._last_failed:  # we do not know the key, and cannot ask: an outage
                raise JWKSUnavailable(
                    f"signing keys unavailable: {self.last_error}", self._retry_after(now)
                )
            self._remember_unknown(kid, now)
            raise TokenError(Reason.UNKNOWN_KID, "not in the key set; refetch is cooling down")
        try:
            await self.refresh()  # maybe a rotation: one refetch, shared with other callers
        except JWKSFetchError as exc:
            raise JWKSUnavailable(
                f"signing keys unavailable: {exc}", self._retry_after(self._clock())
            ) from None
        key = self._keys.get(kid)
        if key is None:
            self._remember_unknown(kid, self._clock())
            raise TokenError(Reason.UNKNOWN_KID, "not in the key set after a refetch")
        return key

    def _remember_unknown(self, kid: str, now: float) -> None:
        if len(self._unknown_kids) >= 1024:  # bounded: a flood of kids must not grow memory
            self._unknown_kids.clear()
        self._unknown_kids[kid] = now + self._cooldown_s

    def _may_fetch(self, now: float) -> bool:
        return now - self._last_attempt >= self._cooldown_s

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self._last_attempt + self._cooldown_s - now))

    # -- fetching -------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Fetch the key set now, or join the fetch already under way (single flight)."""
        task = self._inflight
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight = task
            task.add_done_callback(self._fetch_done)
        # shield: a caller that gives up (client gone) must not cancel the others' fetch
        await asyncio.shield(task)

    def refresh_in_background(self) -> None:
        """Start a refresh ahead of expiry, off the request path, unless one is running or
        the last attempt was inside the cooldown window."""
        if self._inflight is None and self._may_fetch(self._clock()):
            task = asyncio.get_running_loop().create_task(self._fetch())
            self._inflight = task
            task.add_done_callback(self._fetch_done)

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved here, so a background failure is not "never retrieved"

    async def _fetch(self) -> None:
        started = self._clock()
        self._last_attempt = started
        self.fetch_count += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                body, headers = await self._download()
            keys = parse_jwks(body, self._allowed, self._max_keys)
            if not keys:
                raise JWKSFetchError("no usable key in the key set")
        except JWKSFetchError as exc:
            self._fetch_failed(exc)
            raise
        except TimeoutError:
            self._fetch_failed(error := JWKSFetchError("timed out", "timeout"))
            raise error from None
        except httpx.HTTPError as exc:
            self._fetch_failed(error := JWKSFetchError(type(exc).__name__, "network_error"))
            raise error from None
        except asyncio.CancelledError:  # the app shutting down mid-fetch
            self.fetch_results["cancelled"] += 1
            raise
        self.fetch_results["ok"] += 1
        ttl = cache_ttl(headers, self._ttl_s)
        self._keys = {kid: self._unchanged(key) for kid, key in keys.items()}
        self._loaded = True
        self._fresh_until = started + ttl
        self._refresh_at = started + ttl * 0.8
        self._usable_until = started + max(self._stale_s, ttl)
        self._last_failed = False
        self.last_error = None
        self._unknown_kids.clear()
        log.info("jwks fetched", extra={"kids": sorted(keys), "ttl_s": ttl})

    def _unchanged(self, key: VerificationKey) -> VerificationKey:
        """The key on hand when the refetch publishes the same material under its kid."""
        held = self._keys.get(key.kid)
        return held if held is not None and held.material == key.material else key

    async def _download(self) -> tuple[bytes, httpx.Headers]:
        async with self._client.stream(
            "GET",
            self.url,
            # identity: a compressed body could inflate far past the cap in a single chunk
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            follow_redirects=False,
            timeout=self._timeout_s,
        ) as response:
            if response.status_code != 200:
                raise JWKSFetchError(f"HTTP {response.status_code}", "http_error")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding != "identity":  # we asked for none; a compressed body could be a bomb
                raise JWKSFetchError(f"unrequested Content-Encoding {encoding!r}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise JWKSFetchError(f"{declared} bytes, more than the cap of {self._max_bytes}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise JWKSFetchError(f"more than the cap of {self._max_bytes} bytes")
            return bytes(body), response.headers

    def _fetch_failed(self, error: JWKSFetchError) -> None:
        self._last_failed = True
        self.last_error = str(error)
        self.fetch_results[error.result] += 1
        log.warning("jwks fetch failed: %s", error, extra={"url": self.url})

    # -- lifecycle ------------------------------------------------------------------------
    async def warm_up(self, max_backoff_s: float = 60.0) -> None:
        """Load the keys at start-up, retrying with backoff until it works (run as a task)."""
        backoff = 1.0
        while True:
            try:
                await self.refresh()
                return
            except JWKSFetchError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)

    async def aclose(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, JWKSFetchError):
                await task
