"""Who is calling: a verified credential, mapped to a row of Better Auth's "user" table.

The credential is a bearer JWT or, when BETTER_AUTH_SECRET is set and no Authorization header
was sent, Better Auth's signed session cookie (backend/sessions.py). A bearer token always wins:
a bad one is refused, never resolved by a cookie. With AUTH_REQUIRE_SESSION (the default) a
JWT must also name a live session (`sid`), so a sign-out ends it within AUTH_SESSION_CACHE_TTL_S.
A cookie-authenticated write (POST, PUT, PATCH, DELETE) needs an Origin in ALLOWED_ORIGINS:
browsers send cookies with cross-site requests, so this is the CSRF check (403 otherwise).

Better Auth owns the tables; we only read them. A `sub` with no row (a deleted user) is refused
like any bad token. Rows are cached briefly (AUTH_USER_CACHE_TTL_S, at most 60 s) so the hot
path does no I/O; a deleted user is refused within that bound, or within the session cache's
(≤ 5 s) when sessions are checked: Better Auth's session rows cascade with the user.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Boolean, Column, DateTime, Table, Text, select

from backend.auth import Reason, TokenError, VerifiedToken, bearer_token
from backend.auth.jwks import Clock
from backend.config import Settings
from backend.db import SAFE_METHODS, OnDemandSession, Reader, metadata
from backend.errors import AUTH_RESPONSES, Forbidden
from backend.freshness import UNKNOWN, FreshCache
from backend.sessions import SessionDirectory, session_cookie, signed_session_token

log = logging.getLogger("backend.users")

# Better Auth's table, as its migration creates it (shared/BETTER_AUTH.md). Read-only here.
user_table = Table(
    "user",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False, unique=True),
    Column("emailVerified", Boolean, nullable=False),
    Column("image", Text),
    Column("createdAt", DateTime(timezone=True), nullable=False),
    Column("updatedAt", DateTime(timezone=True), nullable=False),
    info={"owner": "better-auth"},  # never migrated by us: Better Auth's migration makes it
)


class User(BaseModel):
    """The signed-in user, as the API shows it (Better Auth's field names)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    id: str
    email: str
    name: str
    email_verified: bool
    image: str | None


class UserDirectory:
    """Looks users up by id, remembering found rows for at most `ttl_s`; `refresh` keeps the
    rows in use fresh in bulk (backend/freshness.py)."""

    def __init__(self, ttl_s: float, clock: Clock, maxsize: int = 10_000) -> None:
        self.clock = clock
        # a missing user is not remembered: one who signs up a moment later is found at once
        self._cache: FreshCache[str, User] = FreshCache(
            ttl_s, clock, keep_missing=False, maxsize=maxsize
        )

    async def get(self, db: Reader, user_id: str) -> User | None:
        user = self._cache.get(user_id)
        if user is UNKNOWN:
            user = (await self._read(db, [user_id])).get(user_id)
            self._cache.put(user_id, user)
        return user

    async def refresh(self, db: Reader) -> int:
        """Re-read every user row in use, in one query. Returns how many."""
        return await self._cache.refresh(lambda ids: self._read(db, ids))

    async def _read(self, db: Reader, ids: list[str]) -> dict[str, User]:
        columns = user_table.c
        rows = await db.execute(
            select(
                columns.id, columns.email, columns.name, columns.emailVerified, columns.image
            ).where(columns.id == ids[0] if len(ids) == 1 else columns.id.in_(ids))
        )
        return {
            row.id: User(
                id=row.id,
                email=row.email,
                name=row.name,
                email_verified=row.emailVerified,
                image=row.image,
            )
            for row in rows
        }


async def get_verified_token(request: Request) -> VerifiedToken:
    token = bearer_token(request.headers.getlist("authorization"))
    verified: VerifiedToken = await request.app.state.verifier.verify(token)
    return verified


async def get_current_user(request: Request) -> User:
    settings: Settings = request.app.state.settings
    directory: UserDirectory = request.app.state.users
    # Its own short autocommit session, not the request's, opened only on a cache miss: the
    # lookups never sit inside a write transaction, and the connection goes back to the pool
    # before the route takes one.
    db = OnDemandSession(request.app.state.read_sessionmaker)
    try:
        user_id = await _cookie_user_id(request, db, settings) or await _token_user_id(
            request, db, settings
        )
        user = await directory.get(db, user_id)
    finally:
        await db.aclose()
    if user is None:
        raise TokenError(Reason.UNKNOWN_USER, "no user row for sub")
    return user


async def _cookie_user_id(request: Request, db: Reader, settings: Settings) -> str | None:
    """The user of Better Auth's session cookie; None when that is not the credential (no
    BETTER_AUTH_SECRET, an Authorization header sent, no such cookie)."""
    secret = settings.better_auth_secret
    if secret is None or request.headers.getlist("authorization"):
        return None
    cookie = session_cookie(request.cookies)
    if cookie is None:
        return None
    check_origin(request, settings)
    token = signed_session_token(cookie, secret.get_secret_value().encode())
    sessions: SessionDirectory = request.app.state.sessions
    return (await sessions.check_token(db, token)).user_id


async def _token_user_id(request: Request, db: Reader, settings: Settings) -> str:
    """The bearer JWT's `sub`, once its session (`sid`) is known live, when that is required."""
    token = await get_verified_token(request)
    if settings.auth_require_session:
        sid = token.claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TokenError(Reason.NO_SESSION, "no sid claim, and AUTH_REQUIRE_SESSION is on")
        sessions: SessionDirectory = request.app.state.sessions
        await sessions.check_sid(db, sid, token.sub)
    return token.sub


def check_origin(request: Request, settings: Settings) -> None:
    """CSRF: a write authenticated by cookie must come from one of our own origins."""
    if request.method in SAFE_METHODS:
        return
    origins = request.headers.getlist("origin")
    if len(origins) != 1 or origins[0] not in settings.origins:
        log.info(
            "cookie write refused: origin not allowed",
            extra={"origin": origins, "path": request.url.path},
        )
        raise Forbidden("Cookie-authenticated writes need an Origin from ALLOWED_ORIGINS")


CurrentUser = Annotated[User, Depends(get_current_user)]

router = APIRouter(prefix="/api", tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me", response_model=User, response_model_by_alias=True)
async def read_me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user
