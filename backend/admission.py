"""Admission: at most MAX_CONCURRENT_REQUESTS requests run at once; the rest wait their turn.

Why: one worker's event loop is shared by every request in flight. With 1,000 of them, each
await (every database round trip) waits behind the other 999 requests' work, so a request
holds its pooled connection for a whole busy loop cycle per round trip, the pool's 20
connections serve a fraction of what they can, and waiters time out: 503s, though neither
the database nor the CPU is full. Admitted requests instead run at full speed, and the
others wait, in arrival order, at no cost (a parked coroutine), for as long as their client
does. Nothing here refuses a request.

Probes and scrapes (/health, /ready, /metrics) skip the line: an orchestrator must see a
busy process as alive, not restart it.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

UNQUEUED_PATHS = frozenset({"/health", "/ready", "/metrics"})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(limit)  # FIFO: waiters are admitted in arrival order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        async with self.slots:
            await self.app(scope, receive, send)
