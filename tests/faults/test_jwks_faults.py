"""The JWKS endpoint fails WHILE requests flow, over several key-cache lifetimes.

tests/auth/test_jwks_resilience.py checks each JWKS rule one request at a time. Here the same
rules must hold under load and over time: dozens of concurrent clients send valid tokens
(freshly minted ones, which need a key lookup, and repeated ones, which the verified-token
cache answers until a refresh is due), while the endpoint is down, slow (answers later than
JWKS_TIMEOUT_S) or flapping, and the app's clock crosses several TTL expiries, refreshes ahead
of expiry and cooldown windows. The app is the real one (real database, real signatures);
respx answers the JWKS URL only. Time is the app's injectable clock, moved in steps while the
clients run; only the fetch timeout is real time (it must be: it cuts a real wait).

What is counted, and must hold:
- keys cached: every valid request gets 200, whatever the endpoint does (stale-if-error; a
  failed refresh ahead of expiry is invisible);
- cold cache, endpoint unreachable: 503 + Retry-After, each within the fetch timeout (with a
  generous margin), /health answering meanwhile; 200 again once the endpoint is back;
- never another 5xx; never two fetches at once; at most one fetch per cooldown window (plus
  the start-up warm-up's own retries); and the timeout cuts every slow answer.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI

from backend.auth import JWKSCache
from backend.auth.testing import IssuerStub
from backend.config import Settings
from tests.auth.support import serve
from tests.conftest import FrozenClock, settle

TIMEOUT_S = 0.25  # JWKS_TIMEOUT_S: small, so a slow endpoint costs the run little real time
TTL_S = 60  # JWKS_TTL_S at its minimum: the most refresh cycles per minute of app time
COOLDOWN_S = 10  # JWKS_COOLDOWN_S, the default
STEP_S = 5.0  # app-clock seconds per step (half a cooldown: every window is visited)
DWELL_S = 0.04  # real seconds the clients run at each step
WORKERS = 24
SLOW_ANSWER_S = 5.0  # when the slow endpoint would answer, if anyone waited (nobody should)
LATENCY_BOUND_S = 10 * TIMEOUT_S  # "within the timeout", with room for a loaded machine

# The endpoint's behaviours: answering, refusing connections, answering 503, answering late.
UP, REFUSED, HTTP_503, SLOW = "up", "refused", "http-503", "slow"
FAILURES = (REFUSED, HTTP_503, SLOW)
# A flapping endpoint, call after call. The call after a success falls in the refresh-ahead
# window (a background fetch, off the request path); the calls after a failure come once the
# keys have expired (on the request path: requests wait for it, at most the timeout, then use
# the stale keys). This order puts each kind of failure in both places, alone and in a run.
FLAPPING = (REFUSED, HTTP_503, UP, SLOW, REFUSED, UP, HTTP_503, SLOW, SLOW, UP)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class MisbehavingJwks:
    """The issuer's JWKS endpoint (a respx side effect) whose next answers follow a plan, and
    which counts what it was asked: calls by behaviour, fetches at once, late answers given."""

    def __init__(self, issuer: IssuerStub, clock: FrozenClock) -> None:
        self.issuer = issuer
        self.clock = clock
        self.plan: Iterator[str] = itertools.repeat(UP)
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[float, str]] = []  # (app time, behaviour) of every call
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_answers_given = 0

    def behave(self, plan: Iterator[str]) -> None:
        self.plan = plan

    def failures_by_freshness(self) -> tuple[set[str], set[str]]:
        """The kinds of failure met while the keys were fresh (a refresh ahead of expiry) and
        once they had expired (a refetch on the request path), from the call log: keys are
        fresh for TTL_S after the start of the last successful fetch."""
        ahead: set[str] = set()
        expired: set[str] = set()
        fetched_at = -math.inf
        for at, behaviour in self.log:
            if behaviour == UP:
                fetched_at = at
            else:
                (ahead if at < fetched_at + TTL_S else expired).add(behaviour)
        return ahead, expired

    @property
    def fetches(self) -> int:
        return self.calls.total()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        behaviour = next(self.plan)
        self.calls[behaviour] += 1
        self.log.append((self.clock(), behaviour))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if behaviour == REFUSED:
                raise httpx.ConnectError("connection refused", request=request)
            if behaviour == HTTP_503:
                return httpx.Response(503, text="Service Unavailable")
            if behaviour == SLOW:
                await asyncio.sleep(SLOW_ANSWER_S)  # cancelled here when the timeout cuts it
                self.slow_answers_given += 1
            return httpx.Response(200, json=self.issuer.jwks())
        finally:
            self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    latency: float  # real seconds
    retry_after: str | None
    challenge: str | None  # WWW-Authenticate: an outage must never look like a bad token
    keys_loaded: bool  # the cache held usable keys when the request was sent
    fetch_pending: bool  # a JWKS fetch was under way when the answer came


@dataclass
class Load:
    """WORKERS clients calling GET /api/me without pause while `steps()` moves the app's
    clock; every answer recorded."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: IssuerStub
    user: dict[str, Any]
    clock: FrozenClock
    endpoint: MisbehavingJwks
    answers: list[Answer] = field(default_factory=list)
    health: list[Answer] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def jwks(self) -> JWKSCache:
        jwks: JWKSCache = self.app.state.jwks
        return jwks

    def start(self, *, poll_health: bool = False) -> None:
        # Repeated tokens outlive the run (the verified-token cache answers them until a
        # refresh is due); fresh ones are minted at the app's current time, each needing a key
        # lookup. Each client alternates between its repeated token and a fresh one.
        repeated = [self.issuer.mint(self.user, lifetime_s=3600, jti=f"r{i}") for i in range(8)]
        fresh = (self.issuer.mint(self.user, jti=f"f{i}") for i in itertools.count())
        for n in range(WORKERS):
            client = self._client(repeated[n % len(repeated)], fresh, fresh_first=n % 2 == 0)
            self._tasks.append(asyncio.create_task(client))
        if poll_health:
            self._tasks.append(asyncio.create_task(self._poll_health()))

    async def steps(self, count: int, *, until: Callable[[], bool] | None = None) -> int:
        """Move the app's clock `count` steps, or fewer once `until()` holds; how many."""
        for taken in range(count):
            if until is not None and until():
                return taken
            self.clock.advance(STEP_S)
            await asyncio.sleep(DWELL_S)
        return count

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        self._tasks.clear()

    async def _client(self, own: str, fresh: Iterator[str], *, fresh_first: bool) -> None:
        use_fresh = fresh_first
        while not self._stop.is_set():
            token = next(fresh) if use_fresh else own
            use_fresh = not use_fresh
            self.answers.append(await self._call("/api/me", bearer(token)))
            # A request answered from the caches never suspends (no I/O in process): yield,
            # as a client on a real network would, or the clock's steps never get a turn.
            await asyncio.sleep(0)

    async def _poll_health(self) -> None:
        while not self._stop.is_set():
            self.health.append(await self._call("/health", {}))
            await asyncio.sleep(0.005)

    async def _call(self, path: str, headers: dict[str, str]) -> Answer:
        loop = asyncio.get_running_loop()
        keys_loaded = self.jwks.loaded
        started = loop.time()
        response = await self.client.get(path, headers=headers)
        return Answer(
            status=response.status_code,
            latency=loop.time() - started,
            retry_after=response.headers.get("retry-after"),
            challenge=response.headers.get("www-authenticate"),
            keys_loaded=keys_loaded,
            fetch_pending=self.endpoint.in_flight > 0,
        )


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(answer.status for answer in answers)


def worst(answers: list[Answer]) -> float:
    return max((answer.latency for answer in answers), default=0.0)


def assert_fetching_disciplined(endpoint: MisbehavingJwks, fetches: int, span_s: float) -> None:
    """Single flight; at most one fetch per cooldown window of the span (the first may open
    it); no slow answer ever waited for (the timeout cut each one)."""
    assert endpoint.max_in_flight == 1
    assert fetches <= span_s / COOLDOWN_S + 1, (fetches, span_s)
    assert endpoint.slow_answers_given == 0


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    return Settings(
        _env_file=None,
        **(settings.model_dump() | {"jwks_timeout_s": TIMEOUT_S, "jwks_ttl_s": TTL_S}),
    )


@pytest.fixture
def endpoint(issuer: IssuerStub, clock: FrozenClock, jwks_mock: respx.Router) -> MisbehavingJwks:
    endpoint = MisbehavingJwks(issuer, clock)
    jwks_mock.get(issuer.jwks_url).mock(side_effect=endpoint)
    return endpoint


class TestWarmCacheUnderLoad:
    """Keys cached at start-up; then the endpoint misbehaves for four cache lifetimes while
    the clients keep calling. Every request must get 200."""

    @pytest.mark.parametrize("outage", [REFUSED, HTTP_503, SLOW])
    async def test_endpoint_down_for_four_lifetimes(
        self,
        fault_settings: Settings,
        clock: FrozenClock,
        issuer: IssuerStub,
        user: dict[str, Any],
        endpoint: MisbehavingJwks,
        outage: str,
    ) -> None:
        async with serve(fault_settings, clock) as (app, client):
            await settle(app)
            assert app.state.jwks.loaded
            assert endpoint.fetches == 1
            endpoint.behave(itertools.repeat(outage))
            load = Load(app, client, issuer, user, clock, endpoint)
            load.start()
            steps = 4 * TTL_S // int(STEP_S)
            await load.steps(steps)
            await load.stop()
            assert app.state.jwks.loaded  # the keys on hand were never wiped
            assert issuer.signing_key.kid in app.state.jwks.keys
        answers = load.answers
        assert statuses(answers) == {200: len(answers)}
        fetches = endpoint.calls[outage]
        # It kept trying once the refresh was due (about once per cooldown, never more often).
        assert fetches >= 3
        assert_fetching_disciplined(endpoint, fetches, steps * STEP_S)
        assert worst(answers) <= LATENCY_BOUND_S, worst(answers)
        served_while_fetching = sum(answer.fetch_pending for answer in answers)
        if outage == SLOW:  # requests were answered while a fetch hung: nobody waited for it
            assert served_while_fetching > 0
        print(
            f"{outage}: {len(answers)} requests {dict(statuses(answers))}, "
            f"{fetches} failed fetches over {steps * STEP_S:.0f}s of app time, worst "
            f"{worst(answers):.3f}s, {served_while_fetching} answered while a fetch was pending"
        )

    async def test_flapping_endpoint(
        self,
        fault_settings: Settings,
        clock: FrozenClock,
        issuer: IssuerStub,
        user: dict[str, Any],
        endpoint: MisbehavingJwks,
    ) -> None:
        """Down, 503, up, slow, down, up...: the run goes on until every kind of failure has
        been met both ahead of expiry and after it, between at least three successful
        refreshes; no request notices any of it."""

        def flapped_enough() -> bool:
            ahead, expired = endpoint.failures_by_freshness()
            return endpoint.calls[UP] >= 4 and ahead >= set(FAILURES) <= expired

        async with serve(fault_settings, clock) as (app, client):
            await settle(app)
            assert app.state.jwks.loaded
            assert endpoint.fetches == 1
            endpoint.behave(itertools.cycle(FLAPPING))
            load = Load(app, client, issuer, user, clock, endpoint)
            load.start()
            steps = await load.steps(400, until=flapped_enough)
            await load.stop()
        assert flapped_enough(), endpoint.log
        answers = load.answers
        assert statuses(answers) == {200: len(answers)}
        fetches = endpoint.fetches - 1  # the warm-up's is not part of the run
        assert_fetching_disciplined(endpoint, fetches, steps * STEP_S)
        assert worst(answers) <= LATENCY_BOUND_S, worst(answers)
        print(
            f"flapping: {len(answers)} requests {dict(statuses(answers))}, fetches "
            f"{dict(endpoint.calls)} over {steps * STEP_S:.0f}s of app time, worst "
            f"{worst(answers):.3f}s"
        )

    async def test_refresh_ahead_hanging_under_a_burst(
        self,
        settings: Settings,
        clock: FrozenClock,
        issuer: IssuerStub,
        user: dict[str, Any],
        endpoint: MisbehavingJwks,
    ) -> None:
        """The refresh ahead of expiry hangs (the issuer accepts the connection and thinks):
        a burst of 200 first-seen tokens is answered, all 200, while that one fetch is still
        pending. Proof without a stopwatch that the refresh is off the request path. (The
        timeout is long here, so the fetch outlives the burst; shutdown cancels it.)"""
        slow_settings = Settings(_env_file=None, **(settings.model_dump() | {"jwks_timeout_s": 30}))
        async with serve(slow_settings, clock) as (app, client):
            await settle(app)
            endpoint.behave(itertools.repeat(SLOW))
            clock.advance(300 * 0.8 + 1)  # into the refresh-ahead window of the default TTL
            tokens = [issuer.mint(user, jti=str(i)) for i in range(200)]
            responses = await asyncio.gather(
                *(client.get("/api/me", headers=bearer(token)) for token in tokens)
            )
            assert [response.status_code for response in responses] == [200] * 200
            assert endpoint.in_flight == 1  # the refresh still hangs
            assert endpoint.calls == {UP: 1, SLOW: 1}


class TestColdCacheUnderLoad:
    """No key was ever fetched and the endpoint does not answer in time: every request gets
    503 + Retry-After within the timeout, /health keeps answering; when the endpoint comes
    back the requests succeed again, all of them."""

    async def test_unreachable_then_back(
        self,
        fault_settings: Settings,
        clock: FrozenClock,
        issuer: IssuerStub,
        user: dict[str, Any],
        endpoint: MisbehavingJwks,
    ) -> None:
        # Slow (requests wait for the fetch, then 503), refused and 503 (the fetch fails at
        # once; requests until the cooldown ends are refused without a fetch).
        endpoint.behave(itertools.cycle((SLOW, REFUSED, HTTP_503)))
        loop = asyncio.get_running_loop()
        async with serve(fault_settings, clock) as (app, client):
            started = loop.time()
            load = Load(app, client, issuer, user, clock, endpoint)
            load.start(poll_health=True)
            outage_steps = 12 * COOLDOWN_S // int(STEP_S)  # twelve cooldown windows
            await load.steps(outage_steps)
            outage_fetches = endpoint.fetches
            outage_real_s = loop.time() - started
            outage_answers = len(load.answers)
            endpoint.behave(itertools.repeat(UP))
            await load.steps(6 * COOLDOWN_S // int(STEP_S))
            await load.stop()
            assert (await client.get("/ready")).status_code == 200
        down, back = load.answers[:outage_answers], load.answers[outage_answers:]

        assert statuses(down) == {503: len(down)}, statuses(down)
        for answer in down:
            assert answer.retry_after is not None
            assert 1 <= int(answer.retry_after) <= COOLDOWN_S
            assert answer.challenge is None  # not a 401: the frontend must not sign out
        assert worst(down) <= LATENCY_BOUND_S, worst(down)
        # Once the keys are in, every request is answered 200; before, 503 was the only other
        # answer (a request that joined the first good fetch got its 200 too).
        assert statuses(back) - Counter({503: len(back)}) == {200: statuses(back)[200]}
        loaded = [answer for answer in back if answer.keys_loaded]
        assert loaded
        assert statuses(loaded) == {200: len(loaded)}
        # /health all along, and while a fetch was hanging.
        assert statuses(load.health) == {200: len(load.health)}
        assert any(answer.fetch_pending for answer in load.health)
        # Fetches: one per window, plus the start-up warm-up's retries (it retries on real
        # time, 1 s, 2 s, 4 s... apart, until one works).
        warm_up_attempts = 2 + math.floor(math.log2(1 + outage_real_s))
        assert endpoint.max_in_flight == 1
        assert outage_fetches <= outage_steps * STEP_S / COOLDOWN_S + 1 + warm_up_attempts
        assert endpoint.slow_answers_given == 0
        print(
            f"cold: {len(down)} requests while down {dict(statuses(down))}, worst "
            f"{worst(down):.3f}s, {outage_fetches} fetches over {outage_steps * STEP_S:.0f}s "
            f"of app time ({outage_real_s:.1f}s real; all fetches {dict(endpoint.calls)}); then "
            f"{len(back)} {dict(statuses(back))}; /health {dict(statuses(load.health))}, "
            f"{sum(a.fetch_pending for a in load.health)} while a fetch hung"
        )
