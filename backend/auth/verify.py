"""Bearer JWT -> verified claims, by the rules of RFC 8725 and what Better Auth issues.

The token is parsed once, by hand, because every generic decoder we measured spends more time
on options and copies than the signature check itself: a strict regex for the compact form,
base64url, JSON. Signature checks call cryptography through a verify function bound to each
key when the key set was loaded. Verified tokens are cached (never past their `exp`, and only
while their key is still published), so a repeated token costs a dictionary lookup instead of
a signature check.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from backend.auth.errors import Reason, TokenError
from backend.auth.jwks import (
    MAX_KID_LENGTH,
    SUPPORTED_ALGORITHMS,
    Clock,
    JWKSCache,
    VerificationKey,
)

# Three non-empty base64url segments, nothing else: rejects JWE (5 parts), JSON serialization,
# a null signature ("h.p."), padding and every non-alphabet byte in one C-level pass.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Header parameters that would make the token choose its own key or change how it is parsed.
_FORBIDDEN_HEADER = frozenset({"crit", "b64", "zip", "enc", "jwk", "jku", "x5u", "x5c"})
_MAX_NUMERIC_DATE = 253_402_300_799  # 9999-12-31: beyond it a "date" is an attack, not a date


@dataclass(frozen=True, slots=True, eq=False)
class VerifiedToken:
    """What a valid token proves. `claims` is the whole payload (Better Auth puts the user row
    there); `sub` is the user id."""

    sub: str
    claims: Mapping[str, Any]
    expires_at: float
    key: VerificationKey


class TokenVerifier:
    def __init__(
        self,
        jwks: JWKSCache,
        *,
        issuer: str,
        audiences: Collection[str],
        algorithms: Collection[str] = SUPPORTED_ALGORITHMS,
        leeway_s: float = 30.0,
        max_lifetime_s: float = 86_400.0,
        max_token_bytes: int = 8 * 1024,
        cache_size: int = 10_000,
        clock: Clock = time.time,
    ) -> None:
        unsupported = set(algorithms) - SUPPORTED_ALGORITHMS
        if unsupported:
            raise ValueError(f"unsupported algorithms: {sorted(unsupported)}")
        if not audiences:
            raise ValueError("at least one audience is required")
        self._jwks = jwks
        self._issuer = issuer
        self._audiences = frozenset(audiences)
        self._algorithms = frozenset(algorithms)
        self._leeway_s = leeway_s
        self._max_lifetime_s = max_lifetime_s
        self._max_token_bytes = max_token_bytes
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, VerifiedToken] = {}
        self.cache_hits = 0

    async def verify(self, token: str) -> VerifiedToken:
        """The verified token, or TokenError (-> 401) / JWKSUnavailable (-> 503)."""
        if len(token) > self._max_token_bytes:
            raise TokenError(Reason.OVERSIZED, f"{len(token)} bytes")
        hit = self._cache.get(token)
        if hit is not None:
            now = self._clock()
            if now < hit.expires_at and self._jwks.is_current(hit.key, now):
                self.cache_hits += 1
                return hit
        return await self._verify_fully(token)

    async def _verify_fully(self, token: str) -> VerifiedToken:
        if not _COMPACT_JWS.fullmatch(token):
            raise TokenError(Reason.MALFORMED, "not a compact JWS of three base64url segments")
        encoded_header, encoded_payload, encoded_signature = token.split(".")
        header = _decode_json_object(encoded_header, Reason.MALFORMED)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise TokenError(Reason.ALG_NOT_ALLOWED, repr(alg)[:40])
        if _FORBIDDEN_HEADER & header.keys():
            raise TokenError(
                Reason.BAD_HEADER, f"forbidden: {sorted(_FORBIDDEN_HEADER & header.keys())}"
            )
        if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
            raise TokenError(Reason.BAD_KID, "kid missing, empty, too long or not a string")

        key = await self._jwks.get(kid)
        if key.alg != alg:
            raise TokenError(Reason.ALG_MISMATCH, f"token says {alg}, key {kid!r} is {key.alg}")
        signing_input = token[: len(encoded_header) + 1 + len(encoded_payload)].encode("ascii")
        if not key.verify(signing_input, _b64decode(encoded_signature)):
            raise TokenError(Reason.BAD_SIGNATURE)

        claims = _decode_json_object(encoded_payload, Reason.BAD_CLAIMS)
        verified = self._check_claims(claims, key, self._clock())
        self._remember(token, verified)
        return verified

    def _check_claims(
        self, claims: dict[str, Any], key: VerificationKey, now: float
    ) -> VerifiedToken:
        exp, iat = _numeric_date(claims, "exp"), _numeric_date(claims, "iat")
        if exp is None or iat is None:
            raise TokenError(Reason.BAD_CLAIMS, "exp and iat must be numeric dates")
        if now > exp + self._leeway_s:
            raise TokenError(Reason.EXPIRED, f"exp {exp:.0f}, now {now:.0f}")
        if iat > now + self._leeway_s:
            raise TokenError(Reason.NOT_YET_VALID, f"iat {iat:.0f}, now {now:.0f}")
        if "nbf" in claims:
            nbf = _numeric_date(claims, "nbf")
            if nbf is None:
                raise TokenError(Reason.BAD_CLAIMS, "nbf must be a numeric date")
            if nbf > now + self._leeway_s:
                raise TokenError(Reason.NOT_YET_VALID, f"nbf {nbf:.0f}, now {now:.0f}")
        if not 0 < exp - iat <= self._max_lifetime_s:
            raise TokenError(Reason.LIFETIME, f"exp - iat = {exp - iat:.0f} s")

        iss = claims.get("iss")
        if iss != self._issuer:  # exact: no trailing slash, prefix or superstring
            raise TokenError(Reason.BAD_ISSUER, f"expected {self._issuer!r}, got {iss!r:.80}")
        aud = claims.get("aud")
        if isinstance(aud, str):
            aud_ok = aud in self._audiences
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            aud_ok = not self._audiences.isdisjoint(aud)
        else:
            aud_ok = False
        if not aud_ok:
            raise TokenError(Reason.BAD_AUDIENCE, f"got {aud!r:.80}")
        sub = claims.get("sub")
        # isprintable: no NUL or other control characters (PostgreSQL text cannot hold NUL,
        # and a user id never has them)
        if not isinstance(sub, str) or not sub.strip() or len(sub) > 255 or not sub.isprintable():
            raise TokenError(Reason.BAD_SUBJECT, "sub must be a non-blank printable string")
        return VerifiedToken(sub=sub, claims=claims, expires_at=exp, key=key)

    def _remember(self, token: str, verified: VerifiedToken) -> None:
        if self._cache_size <= 0:  # AUTH_TOKEN_CACHE_SIZE=0: no caching at all
            return
        cache = self._cache
        if len(cache) >= self._cache_size:
            now = self._clock()
            for stale in [t for t, v in cache.items() if v.expires_at <= now]:
                del cache[stale]
            # Still full of live tokens: drop the oldest tenth (dicts keep insertion order).
            overflow = len(cache) - self._cache_size * 9 // 10
            for oldest in list(cache)[: max(overflow, 0)]:
                del cache[oldest]
        cache[token] = verified


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError(Reason.MALFORMED, "bad base64url") from None


def _decode_json_object(segment: str, reason: Reason) -> dict[str, Any]:
    # orjson: strict RFC 8259 (no NaN/Infinity), validates UTF-8, caps nesting depth, and
    # keeps the last of duplicate names, as RFC 7515 section 4 allows.
    try:
        value = orjson.loads(_b64decode(segment))
    except orjson.JSONDecodeError:
        raise TokenError(reason, "not a JSON object") from None
    if not isinstance(value, dict):
        raise TokenError(reason, "not a JSON object")
    return value


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    # bool is an int in Python; a JSON true is not a date.
    if type(value) is not int and type(value) is not float:
        return None
    # Compare before converting: float(10**400) would raise, and NaN compares false.
    return float(value) if 0 <= value <= _MAX_NUMERIC_DATE else None
