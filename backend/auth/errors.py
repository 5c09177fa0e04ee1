"""Why a token was refused, and when the keys themselves are out of reach.

The reason codes are for logs and metrics only: clients always see one generic 401, so an
attacker learns nothing from probing.
"""

from enum import StrEnum


class Reason(StrEnum):
    MISSING = "missing"  # no bearer credential at all
    MALFORMED = "malformed"  # not a compact JWS: segments, base64url, JSON, size
    OVERSIZED = "oversized"
    BAD_HEADER = "bad_header"  # crit, b64, duplicate or wrongly typed parameters
    ALG_NOT_ALLOWED = "alg_not_allowed"  # none, HS*, or not in the configured list
    BAD_KID = "bad_kid"  # missing, empty, not a string, too long
    UNKNOWN_KID = "unknown_kid"  # not in the issuer's key set (after one refetch)
    ALG_MISMATCH = "alg_mismatch"  # header alg differs from the key's alg
    BAD_SIGNATURE = "bad_signature"
    BAD_CLAIMS = "bad_claims"  # missing or wrongly typed registered claims
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"  # iat or nbf in the future
    LIFETIME = "lifetime"  # exp - iat above the cap
    BAD_ISSUER = "bad_issuer"
    BAD_AUDIENCE = "bad_audience"
    BAD_SUBJECT = "bad_subject"
    UNKNOWN_USER = "unknown_user"  # valid token, but no such user row
    NO_SESSION = "no_session"  # a session is required and the token names none (no `sid`)
    SESSION_ENDED = "session_ended"  # no live session: signed out, revoked, expired, not yours


class TokenError(Exception):
    """The token is not acceptable. `reason` says why; `detail` adds context for the log."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


class JWKSUnavailable(Exception):
    """No usable key can be had right now: an outage, not a bad token (answer 503)."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s
