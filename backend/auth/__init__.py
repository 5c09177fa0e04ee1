"""Verify Better Auth's JWTs in Python.

Self-contained: nothing here imports from the rest of the backend, so this package could ship
on its own. The pieces:

- `JWKSCache`: the issuer's public keys, fetched with httpx and cached (TTL, refresh ahead,
  single flight, unknown-kid cooldown, stale-if-error, size caps).
- `TokenVerifier`: token -> `VerifiedToken`, or `TokenError` (answer 401) /
  `JWKSUnavailable` (answer 503: an outage is not a bad token).
- `bearer_token`: the token from Authorization header values.
- `backend.auth.testing`: an issuer stub for tests that mints Better-Auth-shaped tokens.
"""

from backend.auth.bearer import bearer_token
from backend.auth.errors import JWKSUnavailable, Reason, TokenError
from backend.auth.jwks import SUPPORTED_ALGORITHMS, JWKSCache, JWKSFetchError, VerificationKey
from backend.auth.verify import TokenVerifier, VerifiedToken

__all__ = [
    "SUPPORTED_ALGORITHMS",
    "JWKSCache",
    "JWKSFetchError",
    "JWKSUnavailable",
    "Reason",
    "TokenError",
    "TokenVerifier",
    "VerificationKey",
    "VerifiedToken",
    "bearer_token",
]
