"""Rows remembered for at most `ttl_s`, and kept fresh in bulk so requests rarely wait.

The session and user directories must answer "is this session still live?" with data at most
AUTH_SESSION_CACHE_TTL_S old (the sign-out bound). Re-reading each row when its entry expires
puts a database read in front of a large share of requests: 1,000 users at 300 req/s each come
back every few seconds, just after their entry expired. Instead, a background task re-reads
every row used lately in ONE query (`refresh`), twice per TTL, so entries stay younger than the
TTL and the request path is a dictionary lookup. The bound holds either way: an entry older
than the TTL (the refresh failed, or the row was first seen) is read on the request path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.auth.jwks import Clock
from backend.db import Reader

log = logging.getLogger("backend.freshness")

K = TypeVar("K")
V = TypeVar("V")

UNKNOWN: Any = object()  # "not cached (or too old)", as opposed to a cached None
IDLE_S = 60.0  # rows unused this long are forgotten, not refreshed


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    checked_at: float  # when the database said so
    used_at: float


class FreshCache(Generic[K, V]):
    """`get` answers from entries checked within `ttl_s`; `refresh` re-reads the recently used
    ones in bulk. `keep_missing`: remember "no such row" too (a signed-out session) or not (a
    user who signs up a moment later must be found at once)."""

    def __init__(
        self, ttl_s: float, clock: Clock, *, keep_missing: bool, maxsize: int = 10_000
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.keep_missing = keep_missing
        self.maxsize = maxsize
        self._entries: dict[K, _Entry[V | None]] = {}

    def get(self, key: K) -> V | None:
        """The cached value (None: known missing), or UNKNOWN."""
        entry = self._entries.get(key)
        if entry is None:
            return UNKNOWN  # type: ignore[no-any-return]
        now = self.clock()
        if now - entry.checked_at >= self.ttl_s:
            return UNKNOWN  # type: ignore[no-any-return]
        entry.used_at = now
        return entry.value

    def put(self, key: K, value: V | None, checked_at: float | None = None) -> None:
        if self.ttl_s <= 0 or (value is None and not self.keep_missing):
            self._entries.pop(key, None)
            return
        now = self.clock()
        if key not in self._entries and len(self._entries) >= self.maxsize:
            self._evict_least_used()
        self._entries[key] = _Entry(value, now if checked_at is None else checked_at, now)

    async def refresh(self, read_many: Callable[[list[K]], Awaitable[Mapping[K, V]]]) -> int:
        """Re-read every entry used in the last IDLE_S in one call; forget the others.
        Returns how many were re-read."""
        started = self.clock()
        for key in [k for k, e in self._entries.items() if started - e.used_at > IDLE_S]:
            del self._entries[key]
        keys = list(self._entries)
        if keys:
            found = await read_many(keys)
            for key in keys:
                entry, value = self._entries.get(key), found.get(key)
                if entry is None:
                    continue  # evicted while the query ran
                if value is None and not self.keep_missing:
                    del self._entries[key]
                else:  # when it was last used stays as it was: idle rows still age out
                    entry.value, entry.checked_at = value, started
        return len(keys)

    def _evict_least_used(self) -> None:
        by_use = sorted(self._entries, key=lambda k: self._entries[k].used_at)
        for key in by_use[: max(1, self.maxsize // 10)]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class Refreshable(Protocol):
    async def refresh(self, db: Reader) -> int: ...


async def keep_fresh(
    sessionmaker: async_sessionmaker[AsyncSession],
    directories: Sequence[Refreshable],
    every_s: float,
) -> None:
    """Refresh the directories forever, every `every_s` (run as a task; cancel to stop). A
    failure (the database away) is logged once; requests then read rows themselves."""
    failing = False
    while True:
        await asyncio.sleep(every_s)
        try:
            async with sessionmaker() as db:
                for directory in directories:
                    await directory.refresh(db)
        except Exception as exc:
            if not failing:
                log.warning("session/user refresh failed: %s", type(exc).__name__)
            failing = True
        else:
            if failing:
                log.info("session/user refresh works again")
            failing = False
