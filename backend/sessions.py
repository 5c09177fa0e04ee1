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
from typing import Any
from urllib.parse import unquote

from cachetools import TTLCache
from fastapi import FastAPI
from sqlalchemy import Column, DateTime, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Reason, TokenError
from backend.auth.jwks import Clock
from backend.db import metadata

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


_UNKNOWN: Any = object()  # "not in the cache", as opposed to a cached "no such row" (None)


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    expires_at: float  # seconds since the epoch


class SessionDirectory:
    """Looks sessions up by id (a JWT's `sid`) or by token (the cookie), remembering each
    answer, a missing row included, for `ttl_s` seconds (0: always ask the database)."""

    def __init__(self, ttl_s: float, clock: Clock, maxsize: int = 10_000) -> None:
        self.clock = clock
        self._cache: TTLCache[tuple[str, str], SessionRow | None] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_s, timer=clock) if ttl_s > 0 else None
        )

    async def check_sid(self, db: AsyncSession, sid: str, sub: str) -> SessionRow:
        """The live session `sid` names, which must be `sub`'s; else TokenError."""
        row = await self._live(db, "id", sid)
        if row.user_id != sub:
            raise TokenError(Reason.SESSION_ENDED, "the sid names another user's session")
        return row

    async def check_token(self, db: AsyncSession, token: str) -> SessionRow:
        """The live session of a session token (from a verified cookie); else TokenError."""
        return await self._live(db, "token", token)

    async def _live(self, db: AsyncSession, column: str, value: str) -> SessionRow:
        key = (column, value)
        cached = self._cache.get(key, _UNKNOWN) if self._cache is not None else _UNKNOWN
        if cached is _UNKNOWN:
            row = await self._read(db, column, value)
            if self._cache is not None:
                self._cache[key] = row
        else:
            row = cached
        if row is None:
            raise TokenError(Reason.SESSION_ENDED, "no such session (signed out or revoked)")
        if row.expires_at <= self.clock():
            raise TokenError(Reason.SESSION_ENDED, "the session has expired")
        return row

    async def _read(self, db: AsyncSession, column: str, value: str) -> SessionRow | None:
        found = (
            await db.execute(
                select(session_table.c.id, session_table.c.userId, session_table.c.expiresAt).where(
                    session_table.c[column] == value
                )
            )
        ).one_or_none()
        if found is None:
            return None
        return SessionRow(id=found.id, user_id=found.userId, expires_at=found.expiresAt.timestamp())


def session_directory(app: FastAPI) -> SessionDirectory:
    """The app's SessionDirectory: `app.state.sessions` when the lifespan made one, else made
    here on first use from the settings, with the clock the user directory runs on."""
    directory: SessionDirectory | None = getattr(app.state, "sessions", None)
    if directory is None:
        ttl_s: int = app.state.settings.auth_session_cache_ttl_s
        clock: Clock = app.state.users.clock
        directory = app.state.sessions = SessionDirectory(ttl_s, clock)
    return directory


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
