"""Who is calling: a verified bearer token, mapped to a row of Better Auth's "user" table.

Better Auth owns that table; we only read it. A token whose `sub` has no row (a deleted user)
is refused like any bad token. Rows are cached briefly (AUTH_USER_CACHE_TTL_S, at most 60 s)
so the hot path does no I/O; a deleted user is refused within that bound.
"""

from __future__ import annotations

from typing import Annotated

from cachetools import TTLCache
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Boolean, Column, DateTime, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth import Reason, TokenError, VerifiedToken, bearer_token
from backend.auth.jwks import Clock
from backend.db import SessionDep, metadata
from backend.errors import AUTH_RESPONSES

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
    """Looks users up by id, remembering found rows for a short while."""

    def __init__(self, ttl_s: float, clock: Clock, maxsize: int = 10_000) -> None:
        self._cache: TTLCache[str, User] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl_s, timer=clock) if ttl_s > 0 else None
        )

    async def get(self, session: AsyncSession, user_id: str) -> User | None:
        if self._cache is not None and (user := self._cache.get(user_id)) is not None:
            return user
        row = (
            await session.execute(
                select(
                    user_table.c.id,
                    user_table.c.email,
                    user_table.c.name,
                    user_table.c.emailVerified,
                    user_table.c.image,
                ).where(user_table.c.id == user_id)
            )
        ).one_or_none()
        if row is None:
            return None  # not cached: a user who signs up a moment later is found at once
        user = User(
            id=row.id,
            email=row.email,
            name=row.name,
            email_verified=row.emailVerified,
            image=row.image,
        )
        if self._cache is not None:
            self._cache[user_id] = user
        return user


async def get_verified_token(request: Request) -> VerifiedToken:
    token = bearer_token(request.headers.getlist("authorization"))
    verified: VerifiedToken = await request.app.state.verifier.verify(token)
    return verified


VerifiedTokenDep = Annotated[VerifiedToken, Depends(get_verified_token)]


async def get_current_user(request: Request, token: VerifiedTokenDep, session: SessionDep) -> User:
    directory: UserDirectory = request.app.state.users
    user = await directory.get(session, token.sub)
    if user is None:
        raise TokenError(Reason.UNKNOWN_USER, "no user row for sub")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]

router = APIRouter(prefix="/api", tags=["users"], responses=AUTH_RESPONSES)


@router.get("/me", response_model=User, response_model_by_alias=True)
async def read_me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user
