"""Better Auth's sessions, as the backend reads them: instant sign-out and the session cookie.

- A JWT from the frontend carries `sid` (the session row's id, added by `definePayload`). With
  AUTH_REQUIRE_SESSION on, it is accepted only while that row exists, has not expired and
  belongs to the token's `sub`: signing out (or an admin revoking the session, or deleting
  the user: the row cascades) ends the token too, within AUTH_SESSION_CACHE_TTL_S (≤ 5 s).
- With BETTER_AUTH_SECRET set, Better Auth's own session cookie is a credential as well:
  `better-auth.session_token=<session token>.<signature>` (URL-encoded; `__Secure-` prefixed on
  https), the signature being base64(HMAC-SHA256(secret, token)). The `session_data` cookie
  cache is never one.

Rows are remembered for a few seconds (found or not), so the hot path is one dictionary lookup
and the database sees at most one read per session per TTL. Better Auth owns the table; we
only read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from sqlalchemy import Column, DateTime, Table, Text, select

from backend.auth import Reason, TokenError
from backend.auth.jwks import Clock
from backend.db import Reader, metadata
from backend.freshness import UNKNOWN, FreshCache

# The columns of Better Auth's "session" table that we read (shared/BETTER_AUTH.md has the DDL).
session_table = Table(
    "session",
    metadata,
    Column("id", Text, primary_key=True),
    Column("token", Text, nullable=False, unique=True),
    Column("userId", Text, nullable=False),
    Column("expiresAt", DateTime(timezone=True), nullable=False),
    info={"owner": "better-auth"},  # never migrated by us: Better Auth's migration makes it
)

# The https name first: a browser on https only ever holds that one.
SESSION_COOKIES = ("__Secure-better-auth.session_token", "better-auth.session_token")
SIGNATURE_CHARS = 44  # standard base64 of 32 bytes, padded
MAX_COOKIE_CHARS = 512  # Better Auth's tokens are 32 characters; never hash a huge value


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    expires_at: float  # seconds since the epoch


class SessionDirectory:
    """Looks sessions up by id (a JWT's `sid`) or by token (the cookie), remembering each
    answer, a missing row included, for at most `ttl_s` seconds (0: always ask the database);
    `refresh` keeps the answers in use fresh in bulk (backend/freshness.py)."""

    def __init__(self, ttl_s: float, clock: Clock, maxsize: int = 10_000) -> None:
        self.clock = clock
        self._caches: dict[str, FreshCache[str, SessionRow]] = {
            column: FreshCache(ttl_s, clock, keep_missing=True, maxsize=maxsize)
            for column in ("id", "token")
        }

    async def check_sid(self, db: Reader, sid: str, sub: str) -> SessionRow:
        """The live session `sid` names, which must be `sub`'s; else TokenError."""
        row = await self._live(db, "id", sid)
        if row.user_id != sub:
            raise TokenError(Reason.SESSION_ENDED, "the sid names another user's session")
        return row

    async def check_token(self, db: Reader, token: str) -> SessionRow:
        """The live session of a session token (from a verified cookie); else TokenError."""
        return await self._live(db, "token", token)

    async def _live(self, db: Reader, column: str, value: str) -> SessionRow:
        cache = self._caches[column]
        row = cache.get(value)
        if row is UNKNOWN:
            row = (await self._read(db, column, [value])).get(value)
            cache.put(value, row)
        if row is None:
            raise TokenError(Reason.SESSION_ENDED, "no such session (signed out or revoked)")
        if row.expires_at <= self.clock():
            raise TokenError(Reason.SESSION_ENDED, "the session has expired")
        return row

    async def refresh(self, db: Reader) -> int:
        """Re-read every session in use, one query per lookup column. Returns how many."""
        by_id = await self._caches["id"].refresh(lambda ids: self._read(db, "id", ids))
        by_token = await self._caches["token"].refresh(
            lambda tokens: self._read(db, "token", tokens)
        )
        return by_id + by_token

    async def _read(self, db: Reader, by: str, values: list[str]) -> dict[str, SessionRow]:
        """Session rows whose column `by` (id or token) is one of `values`, keyed by it."""
        key, table = session_table.c[by], session_table.c
        found = await db.execute(
            select(key, table.id, table.userId, table.expiresAt).where(
                key == values[0] if len(values) == 1 else key.in_(values)
            )
        )
        return {
            row[0]: SessionRow(id=row.id, user_id=row.userId, expires_at=row.expiresAt.timestamp())
            for row in found
        }


def session_cookie(cookies: Mapping[str, str]) -> str | None:
    """The raw value of Better Auth's session cookie, if the request carries one."""
    for name in SESSION_COOKIES:
        if (value := cookies.get(name)) is not None:
            return value
    return None


def signed_session_token(cookie: str, secret: bytes) -> str:
    """The session token a cookie value carries, once its signature is checked (in constant
    time); TokenError when the value is malformed or the signature does not match."""
    value = unquote(cookie) if len(cookie) <= MAX_COOKIE_CHARS else ""
    token, _, signature = value.rpartition(".")
    if not token or len(signature) != SIGNATURE_CHARS or not signature.endswith("="):
        raise TokenError(Reason.MALFORMED, "session cookie is not <token>.<signature>")
    expected = base64.b64encode(hmac.new(secret, token.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature.encode()):
        raise TokenError(Reason.BAD_SIGNATURE, "session cookie signature does not match")
    return token
