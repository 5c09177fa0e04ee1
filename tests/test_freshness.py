"""backend/freshness.py: entries never older than the TTL; the ones in use re-read in bulk, so
requests find them fresh; idle ones forgotten; the background loop survives failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import Reader
from backend.freshness import IDLE_S, UNKNOWN, FreshCache, keep_fresh
from tests.conftest import FrozenClock

TTL_S = 5.0


class Rows:
    """A stand-in table: what the bulk read finds, and how often it was asked."""

    def __init__(self, **rows: str) -> None:
        self.rows = dict(rows)
        self.calls: list[list[str]] = []

    async def read_many(self, keys: list[str]) -> Mapping[str, str]:
        self.calls.append(sorted(keys))
        return {k: self.rows[k] for k in keys if k in self.rows}


class TestFreshCache:
    def test_an_entry_is_served_until_it_is_ttl_old(self, clock: FrozenClock) -> None:
        cache: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=True)
        assert cache.get("a") is UNKNOWN
        cache.put("a", "row a")
        clock.advance(TTL_S - 0.1)
        assert cache.get("a") == "row a"
        clock.advance(0.1)
        assert cache.get("a") is UNKNOWN  # the bound: never older than the TTL

    def test_missing_rows_are_remembered_only_when_asked(self, clock: FrozenClock) -> None:
        sessions: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=True)
        users: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=False)
        sessions.put("gone", None)
        users.put("not yet", None)
        assert sessions.get("gone") is None
        assert users.get("not yet") is UNKNOWN

    async def test_refresh_rereads_every_entry_in_one_call(self, clock: FrozenClock) -> None:
        rows = Rows(a="a v2", b="b v2")
        cache: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=True)
        for key in ("a", "b", "c"):
            cache.put(key, f"{key} v1")
        clock.advance(TTL_S - 1)
        assert await cache.refresh(rows.read_many) == 3
        assert rows.calls == [["a", "b", "c"]]
        clock.advance(2)  # past the first read's TTL, within the refresh's
        assert cache.get("a") == "a v2"
        assert cache.get("c") is None  # the row went away: known missing now

    async def test_a_vanished_row_is_dropped_when_missing_is_not_kept(
        self, clock: FrozenClock
    ) -> None:
        cache: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=False)
        cache.put("deleted", "row")
        await cache.refresh(Rows().read_many)
        assert cache.get("deleted") is UNKNOWN
        assert len(cache) == 0

    async def test_idle_entries_are_forgotten_not_refreshed(self, clock: FrozenClock) -> None:
        rows = Rows(busy="busy", idle="idle")
        cache: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=True)
        cache.put("busy", "busy")
        cache.put("idle", "idle")
        for _ in range(int(IDLE_S / (TTL_S / 2)) + 2):  # `busy` is used between refreshes
            clock.advance(TTL_S / 2)
            assert cache.get("busy") == "busy"
            await cache.refresh(rows.read_many)
        assert rows.calls[-1] == ["busy"]
        assert len(cache) == 1

    def test_size_is_bounded_by_dropping_the_least_used(self, clock: FrozenClock) -> None:
        cache: FreshCache[str, str] = FreshCache(TTL_S, clock, keep_missing=True, maxsize=10)
        for i in range(10):
            cache.put(f"k{i}", "v")
            clock.advance(0.01)
        cache.put("new", "v")
        assert len(cache) == 10
        assert cache.get("k0") is UNKNOWN  # the least recently used went first
        assert cache.get("new") == "v"

    def test_ttl_zero_caches_nothing(self, clock: FrozenClock) -> None:
        cache: FreshCache[str, str] = FreshCache(0, clock, keep_missing=True)
        cache.put("a", "row")
        assert cache.get("a") is UNKNOWN


class FailingThenWorking:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.refreshed = 0

    async def refresh(self, db: Reader) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError("database away")
        self.refreshed += 1
        return 1


class NoDatabase:
    """A sessionmaker stand-in: the refreshers here never touch the session."""

    def __call__(self) -> Any:
        return self

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class TestKeepFresh:
    async def test_failures_are_logged_once_and_the_loop_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="backend.freshness")
        directory = FailingThenWorking(failures=3)
        sessionmaker: async_sessionmaker[AsyncSession] = NoDatabase()  # type: ignore[assignment]
        task = asyncio.create_task(keep_fresh(sessionmaker, [directory], every_s=0.001))
        for _ in range(2_000):
            if directory.refreshed >= 2:
                break
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert directory.refreshed >= 2
        messages = [record.getMessage() for record in caplog.records]
        assert messages.count("session/user refresh failed: OSError") == 1
        assert "session/user refresh works again" in messages
