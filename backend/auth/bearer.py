"""The bearer credential of a request (RFC 6750 section 2.1): the Authorization header only.

Tokens in query strings or unrelated cookies are never looked at: they end up in logs,
browser history and Referer headers.
"""

from collections.abc import Sequence

from backend.auth.errors import Reason, TokenError


def bearer_token(authorization: Sequence[str]) -> str:
    """The token from the request's Authorization header values (all of them, so that a
    request carrying two is refused rather than resolved by whichever a proxy kept)."""
    if not authorization:
        raise TokenError(Reason.MISSING, "no Authorization header")
    if len(authorization) > 1:
        raise TokenError(Reason.MALFORMED, "several Authorization headers")
    scheme, _, credentials = authorization[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenError(Reason.MISSING, "Authorization is not a Bearer credential")
    token = credentials.strip()
    if not token:
        raise TokenError(Reason.MALFORMED, "Bearer with no token")
    return token
