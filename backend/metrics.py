"""Prometheus metrics: GET /metrics (not in the OpenAPI schema, not behind a bearer token).

What is measured, and what it costs on the hot path:
- `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}`:
  per request, one dictionary increment and one bucket increment (backend.middleware records
  them; Metrics below says why not prometheus-client's Counter and Histogram). `route` is the
  route TEMPLATE (`/api/{user_id}/tasks/{task_id}`), never the raw path; anything no route
  matched is `unmatched`, and methods outside the usual set are `OTHER`, so no client can grow
  the label space.
- `auth_token_verifications_total{outcome,reason}`: every bearer token the verifier checked:
  `accepted` (reason `ok`), `refused` (reason: the verifier's Reason, e.g. `expired`), or
  `unavailable` (reason `jwks_unavailable`: the 503 case). A plain integer increment.
- `auth_refusals_total{reason}`: every 401, by the TokenError's reason, wherever it was raised
  (no credentials `missing`, the verifier's reasons, `unknown_user`, ended sessions...): the
  app's TokenError handler, wrapped (count_refusals), counts it. Error path only.
- `auth_token_cache_hits_total`, `auth_jwks_fetches_total{result}`, `auth_jwks_keys`: read from
  the verifier and the key cache when Prometheus scrapes (a custom collector), not per request.
- `process_*`, `python_gc_*`, `python_info`: prometheus-client's standard collectors.

Nothing here names a user, a token, a key or a raw path. Still, /metrics is for the operator:
do not expose it publicly (README, "Operations").
"""

from __future__ import annotations

import inspect
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ExceptionHandler

from backend.auth import JWKSCache, JWKSUnavailable, TokenError, TokenVerifier
from backend.auth.verify import VerifiedToken

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MeteredVerifier(TokenVerifier):
    """The token verifier, counting each verification by outcome and reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: defaultdict[tuple[str, str], int] = defaultdict(int)

    async def verify(self, token: str) -> VerifiedToken:
        try:
            verified = await super().verify(token)
        except TokenError as exc:
            self.outcomes["refused", exc.reason.value] += 1
            raise
        except JWKSUnavailable:
            self.outcomes["unavailable", "jwks_unavailable"] += 1
            raise
        self.outcomes["accepted", "ok"] += 1
        return verified


class _AuthCollector(Collector):
    """Reads the verifier's and the key cache's counters at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        verifier, jwks = self._metrics.verifier, self._metrics.jwks
        verifications = CounterMetricFamily(
            "auth_token_verifications",
            "Bearer tokens checked by the verifier, by outcome and reason",
            labels=["outcome", "reason"],
        )
        hits = CounterMetricFamily(
            "auth_token_cache_hits", "Verifications answered from the verified-token cache"
        )
        fetches = CounterMetricFamily(
            "auth_jwks_fetches", "Fetches of the issuer's JWKS, by result", labels=["result"]
        )
        keys = GaugeMetricFamily("auth_jwks_keys", "Usable signing keys on hand")
        refusals = CounterMetricFamily(
            "auth_refusals",
            "401 answers, by the reason the credential was refused",
            labels=["reason"],
        )
        for reason, count in list(self._metrics.refusals.items()):
            refusals.add_metric([reason], count)
        if verifier is not None:
            for (outcome, reason), count in list(verifier.outcomes.items()):
                verifications.add_metric([outcome, reason], count)
            hits.add_metric([], verifier.cache_hits)
        if jwks is not None:
            for result, count in jwks.fetch_results.items():
                fetches.add_metric([result], count)
            keys.add_metric([], len(jwks.keys) if jwks.loaded else 0)
        yield from (verifications, refusals, hits, fetches, keys)

    def describe(self) -> Iterator[Any]:
        return iter(())  # unchecked collector: its families depend on what has happened


class Metrics:
    """One app's metrics, in a registry of its own (tests run many apps in one process).

    The per-request counts are plain integers in dictionaries, turned into Prometheus families
    only when scraped: prometheus-client's Counter and Histogram take a lock per update, which
    cost several times more per request than this. Every update happens on the event loop's
    thread (the middleware), and so does every scrape (an async route), so nothing races.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.verifier: MeteredVerifier | None = None
        self.jwks: JWKSCache | None = None
        self.requests: dict[tuple[str, str, int], int] = {}
        self.refusals: dict[str, int] = {}
        # (method, route) -> per-bucket counts (the last one is +Inf), then the sum of seconds
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.registry.register(_HTTPCollector(self))
        self.registry.register(_AuthCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def bind(self, verifier: MeteredVerifier | None, jwks: JWKSCache | None) -> None:
        """What the auth collector reads (set while the app runs, None after)."""
        self.verifier, self.jwks = verifier, jwks

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get((method, route))
        if histogram is None:
            histogram = self.latency[method, route] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        histogram[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # first bucket with le >= seconds
        histogram[-1] += seconds

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def count_refusals(self, handler: ExceptionHandler) -> ExceptionHandler:
        """The app's TokenError handler, counting each refusal by reason first."""

        async def counted(request: Request, exc: Exception) -> Response:
            if isinstance(exc, TokenError):
                reason = exc.reason.value  # a closed enum: bounded labels
                self.refusals[reason] = self.refusals.get(reason, 0) + 1
            answer = handler(request, exc)  # type: ignore[arg-type]  # (HTTP, not websocket)
            response = await answer if inspect.isawaitable(answer) else answer
            assert isinstance(response, Response)
            return response

        return counted


class _HTTPCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in list(self._metrics.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its response, by route template",
            labels=["method", "route"],
        )
        bounds = [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]  # "0.001" ... "10.0", "+Inf"
        for (method, route), histogram in list(self._metrics.latency.items()):
            cumulative = list(accumulate(histogram[:-1]))
            latency.add_metric(
                [method, route], list(zip(bounds, cumulative, strict=True)), histogram[-1]
            )
        yield from (requests, latency)

    def describe(self) -> Iterator[Any]:
        return iter(())


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format. Unauthenticated by design: keep it off the public internet."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
