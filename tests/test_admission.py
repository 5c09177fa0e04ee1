"""Admission (backend/admission.py): at most N requests run at once, the rest wait in arrival
order and are never refused; probes skip the line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.types import Receive, Scope, Send

from backend.admission import AdmissionMiddleware


class GatedApp:
    """An ASGI app whose requests stay in flight until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.most_running = 0
        self.started: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started.append(scope["path"])
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if scope["path"] != "/health":
                await self.gate.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.running -= 1


def client_for(app: AdmissionMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def until(condition: Callable[[], bool]) -> None:
    """Let the requests in flight run until `condition` holds (5 s at most)."""
    for _ in range(5_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


class TestAdmission:
    async def test_at_most_the_limit_run_and_the_rest_all_complete(self) -> None:
        inner = GatedApp()
        async with client_for(AdmissionMiddleware(inner, limit=3)) as client:
            requests = [asyncio.create_task(client.get(f"/r{i}")) for i in range(10)]
            await until(lambda: inner.running == 3)
            await asyncio.sleep(0.05)  # the other seven stay parked, not started
            assert len(inner.started) == 3
            inner.gate.set()
            responses = await asyncio.gather(*requests)
        assert [r.status_code for r in responses] == [200] * 10  # waiting is never refusing
        assert inner.most_running == 3

    async def test_waiting_requests_are_admitted_in_arrival_order(self) -> None:
        inner = GatedApp()
        async with client_for(AdmissionMiddleware(inner, limit=1)) as client:
            requests = []
            for i in range(6):
                requests.append(asyncio.create_task(client.get(f"/r{i}")))
                await asyncio.sleep(0.005)  # each reaches the line before the next is sent
            await until(lambda: inner.running == 1)
            inner.gate.set()
            await asyncio.gather(*requests)
        assert inner.started == [f"/r{i}" for i in range(6)]

    async def test_health_is_answered_while_every_slot_is_taken(self) -> None:
        inner = GatedApp()
        async with client_for(AdmissionMiddleware(inner, limit=2)) as client:
            busy = [asyncio.create_task(client.get("/api/me/tasks")) for _ in range(5)]
            await until(lambda: inner.running == 2)
            health = await client.get("/health")
            assert health.status_code == 200
            assert len(inner.started) == 3  # the two busy ones, then /health past the line
            inner.gate.set()
            await asyncio.gather(*busy)
