"""Operations: request ids, the access log, structured logs without credentials, /metrics
(families, labels, bounded cardinality) and shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from backend.auth import JWKSCache, JWKSFetchError
from backend.auth.testing import IssuerStub
from backend.config import Settings
from backend.logs import JSONFormatter, RequestIdFilter, configure_logging, request_id_var
from backend.main import create_app
from tests.conftest import FrozenClock, bearer, settle, started

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at INFO, its handler tagging records with the request id as ours does."""
    caplog.set_level(logging.INFO, logger="backend")
    request_filter = RequestIdFilter()
    caplog.handler.addFilter(request_filter)
    yield caplog
    caplog.handler.removeFilter(request_filter)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put back the handlers configure_logging replaces (its stream is a test's capture)."""
    saved = {name: logging.getLogger(name).handlers[:] for name in ("backend", "uvicorn")}
    yield
    for name, handlers in saved.items():
        logging.getLogger(name).handlers[:] = handlers


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "backend.access"]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """/metrics as {(sample name, sorted labels): value}."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class TestRequestId:
    async def test_generated_when_absent(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/health")
        second = await client.get("/health")
        assert HEX32.fullmatch(first.headers["x-request-id"])
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    async def test_echoed_when_sane(self, client: httpx.AsyncClient) -> None:
        for sane in ("abc-123", "0af7651916cd43dd8448eb211c80319c", "req:42.a_b", "x" * 64):
            response = await client.get("/health", headers={"X-Request-ID": sane})
            assert response.headers["x-request-id"] == sane

    async def test_replaced_when_not_sane(self, client: httpx.AsyncClient) -> None:
        for insane in ("x" * 65, "a b", "a\tb", "<script>", "a;b", "tok=abc", "é"):
            headers = [(b"X-Request-ID", insane.encode("utf-8"))]
            response = await client.get("/health", headers=headers)
            assert HEX32.fullmatch(response.headers["x-request-id"]), insane

    async def test_on_error_responses_too(self, client: httpx.AsyncClient) -> None:
        for response in (
            await client.get("/api/me", headers={"X-Request-ID": "r-401"}),
            await client.get("/no/such/path", headers={"X-Request-ID": "r-404"}),
            await client.post(
                "/api/me/tasks",
                content=b"x" * (2 * 1024 * 1024),
                headers={"X-Request-ID": "r-413", "Content-Type": "application/json"},
            ),
        ):
            assert response.headers["x-request-id"] == f"r-{response.status_code}"

    async def test_on_a_crash_too(self, app: FastAPI, logs: pytest.LogCaptureFixture) -> None:
        async def crash() -> None:
            raise RuntimeError("boom")

        app.add_api_route("/crash", crash)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/crash", headers={"X-Request-ID": "r-500"})
        assert response.status_code == 500
        assert response.headers["x-request-id"] == "r-500"
        [line] = access_records(logs)
        assert line.levelno == logging.ERROR
        assert (line.__dict__["route"], line.__dict__["status"]) == ("/crash", 500)

    async def test_exposed_to_the_browser(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={"Origin": "http://localhost:3000"})
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed

    async def test_in_every_log_record_of_the_request(
        self, client: httpx.AsyncClient, logs: pytest.LogCaptureFixture, issuer: IssuerStub
    ) -> None:
        expired = issuer.mint(lifetime_s=-3600)
        response = await client.get(
            "/api/me", headers={**bearer(expired), "X-Request-ID": "trace-me-1"}
        )
        assert response.status_code == 401
        names = {record.name for record in logs.records}
        assert {"backend.errors", "backend.access"} <= names  # the refusal and the access line
        for record in logs.records:
            assert record.__dict__["request_id"] == "trace-me-1", record.name

    async def test_not_outside_a_request(
        self, client: httpx.AsyncClient, logs: pytest.LogCaptureFixture
    ) -> None:
        await client.get("/health", headers={"X-Request-ID": "done"})
        logging.getLogger("backend.test").info("between requests")
        assert logs.records[-1].__dict__["request_id"] is None
        assert request_id_var.get() is None


class TestAccessLog:
    async def test_one_line_per_request(
        self, client: httpx.AsyncClient, logs: pytest.LogCaptureFixture
    ) -> None:
        response = await client.get("/api/me/tasks/42", headers={"X-Request-ID": "acc-1"})
        assert response.status_code == 401
        [line] = access_records(logs)
        fields = line.__dict__
        assert fields["method"] == "GET"
        assert fields["route"] == "/api/{user_id}/tasks/{task_id}"
        assert fields["status"] == 401
        assert isinstance(fields["duration_ms"], float)
        assert fields["duration_ms"] >= 0
        assert fields["request_id"] == "acc-1"
        assert line.getMessage().startswith("GET /api/{user_id}/tasks/{task_id} 401 ")

    async def test_never_a_token_a_query_or_a_header(
        self,
        client: httpx.AsyncClient,
        logs: pytest.LogCaptureFixture,
        token: str,
        issuer: IssuerStub,
        user: dict[str, Any],
    ) -> None:
        expired = issuer.mint(user, lifetime_s=-3600)
        secrets = [token, expired, "query-secret-value", "cookie-secret-value", user["email"]]
        for credential in (token, expired):
            await client.get(
                "/api/me/tasks?q=query-secret-value&access_token=query-secret-value",
                headers={**bearer(credential), "Cookie": "session=cookie-secret-value"},
            )
        assert len(access_records(logs)) == 2
        formatter = JSONFormatter()
        for record in logs.records:
            line = formatter.format(record)
            for secret in secrets:
                assert secret not in line, record.name
            for part in (secret[:40] for secret in (token, expired)):
                assert part not in line  # not even a prefix of a token
            assert "Bearer" not in line
            assert "?" not in record.__dict__.get("route", "")

    async def test_unmatched_paths_log_no_path(
        self, client: httpx.AsyncClient, logs: pytest.LogCaptureFixture
    ) -> None:
        await client.get("/users/ada@example.com/secret-path")
        [line] = access_records(logs)
        assert line.__dict__["route"] == "unmatched"
        assert "ada@example.com" not in JSONFormatter().format(line)

    async def test_json_lines_on_stderr(
        self,
        settings: Settings,
        clock: FrozenClock,
        jwks_route: respx.Route,
        capsys: pytest.CaptureFixture[str],
        restore_logging: None,
    ) -> None:
        app = create_app(settings.model_copy(update={"log_format": "json"}), clock=clock)
        async for running in started(app):
            await settle(running)
            async with asgi_client(running) as client:
                await client.get("/health", headers={"X-Request-ID": "json-1"})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        [access] = [line for line in lines if line["logger"] == "backend.access"]
        assert access == {
            "time": access["time"],
            "level": "info",
            "logger": "backend.access",
            "message": access["message"],
            "method": "GET",
            "route": "/health",
            "status": 200,
            "duration_ms": access["duration_ms"],
            "request_id": "json-1",
        }
        fetched = next(line for line in lines if line["message"] == "jwks fetched")
        assert "request_id" not in fetched  # logged outside any request

    def test_uvicorn_lines_are_json_too(
        self, capsys: pytest.CaptureFixture[str], restore_logging: None
    ) -> None:
        configure_logging("info", "json")
        logging.getLogger("uvicorn.error").warning("Started server process")
        last = capsys.readouterr().err.splitlines()[-1]
        assert json.loads(last)["logger"] == "uvicorn.error"


class TestMetrics:
    async def test_not_in_the_api_schema(self, client: httpx.AsyncClient) -> None:
        schema = (await client.get("/openapi.json")).json()
        assert "/metrics" not in schema["paths"]

    async def test_no_bearer_needed(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")

    async def test_named_families_after_some_requests(
        self, client: httpx.AsyncClient, token: str, issuer: IssuerStub, user: dict[str, Any]
    ) -> None:
        await client.get("/health")
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        assert (await client.get("/api/me", headers=bearer(token))).status_code == 200
        expired = issuer.mint(user, lifetime_s=-3600)
        assert (await client.get("/api/me", headers=bearer(expired))).status_code == 401
        assert (await client.get("/api/me")).status_code == 401
        samples = await scrape(client)

        requests = "http_requests_total"
        assert value(samples, requests, method="GET", route="/health", status="200") == 1
        assert value(samples, requests, method="GET", route="/api/me", status="200") == 2
        assert value(samples, requests, method="GET", route="/api/me", status="401") == 2
        latency = "http_request_duration_seconds"
        assert value(samples, f"{latency}_count", method="GET", route="/api/me") == 4
        assert value(samples, f"{latency}_bucket", method="GET", route="/api/me", le="+Inf") == 4
        assert value(samples, f"{latency}_sum", method="GET", route="/api/me") > 0

        verifications = "auth_token_verifications_total"
        assert value(samples, verifications, outcome="accepted", reason="ok") == 2
        assert value(samples, verifications, outcome="refused", reason="expired") == 1
        assert value(samples, "auth_refusals_total", reason="expired") == 1
        assert value(samples, "auth_refusals_total", reason="missing") == 1
        assert value(samples, "auth_token_cache_hits_total") == 1  # the repeated token
        assert value(samples, "auth_jwks_fetches_total", result="ok") == 1  # the warm-up
        assert value(samples, "auth_jwks_keys") == 1
        assert any(name == "python_info" for name, _ in samples)  # the standard collectors

    async def test_jwks_fetch_failures_by_result(
        self, settings: Settings, clock: FrozenClock, jwks_mock: respx.Router, issuer: IssuerStub
    ) -> None:
        jwks_mock.get(issuer.jwks_url).mock(return_value=httpx.Response(503))
        app = create_app(settings, clock=clock)
        async for running in started(app):
            await settle(running)
            async with asgi_client(running) as client:
                response = await client.get("/api/me", headers=bearer(issuer.mint()))
                assert response.status_code == 503
                samples = await scrape(client)
        assert value(samples, "auth_jwks_fetches_total", result="http_error") >= 1
        assert value(samples, "auth_jwks_fetches_total", result="ok") == 0
        verifications = "auth_token_verifications_total"
        assert value(samples, verifications, outcome="unavailable", reason="jwks_unavailable") == 1
        assert value(samples, "auth_jwks_keys") == 0

    @pytest.mark.parametrize(
        ("answer", "result"),
        [
            (httpx.Response(503), "http_error"),
            (httpx.ConnectError("refused"), "network_error"),
            (httpx.ReadTimeout("slow"), "network_error"),
            (httpx.Response(200, text="<html>"), "invalid"),
            (httpx.Response(200, json={"keys": []}), "invalid"),
            (httpx.Response(200, content=b"x" * 70_000), "invalid"),
        ],
    )
    async def test_each_failed_fetch_is_counted_under_one_of_few_results(
        self, answer: httpx.Response | Exception, result: str, jwks_mock: respx.Router
    ) -> None:
        url = "https://issuer.test/api/auth/jwks"
        route = jwks_mock.get(url)
        route.side_effect = answer if isinstance(answer, Exception) else None
        if isinstance(answer, httpx.Response):
            route.return_value = answer
        async with httpx.AsyncClient() as http:
            cache = JWKSCache(url, client=http)
            with pytest.raises(JWKSFetchError):
                await cache.refresh()
        assert cache.fetch_results == {**dict.fromkeys(cache.fetch_results, 0), result: 1}

    async def test_a_fetch_past_the_timeout_is_counted_as_timeout(
        self, jwks_mock: respx.Router
    ) -> None:
        url = "https://issuer.test/api/auth/jwks"

        async def hang(request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(10)
            return httpx.Response(503)

        jwks_mock.get(url).mock(side_effect=hang)
        async with httpx.AsyncClient() as http:
            cache = JWKSCache(url, client=http, timeout_s=0.05)
            with pytest.raises(JWKSFetchError):
                await cache.refresh()
        assert cache.fetch_results["timeout"] == 1

    async def test_cardinality_is_bounded(self, client: httpx.AsyncClient) -> None:
        for i in range(40):
            await client.get(f"/scan/{i}/admin.php?id={i}")
            await client.get(f"/api/user-{i}/tasks/{i}")
        await client.request("BREW", "/health")
        await client.request("PROPFIND", f"/x/{'y' * 300}")
        response = await client.get("/metrics")
        samples = await scrape(client)
        routes = {
            dict(labels)["route"] for (name, labels) in samples if name == "http_requests_total"
        }
        methods = {dict(labels)["method"] for (name, labels) in samples if "route" in dict(labels)}
        assert routes <= {"unmatched", "/health", "/metrics", "/api/{user_id}/tasks/{task_id}"}
        assert methods <= {"GET", "OTHER"}
        assert "admin.php" not in response.text
        assert "user-1" not in response.text
        assert "y" * 50 not in response.text
        series = {labels for (name, labels) in samples if name == "http_requests_total"}
        assert len(series) <= 5  # 80 distinct paths and 2 odd methods made a handful of series

    async def test_no_user_data_in_metrics(
        self, client: httpx.AsyncClient, token: str, user: dict[str, Any]
    ) -> None:
        await client.get("/api/me", headers=bearer(token))
        await client.get(f"/api/{user['id']}/tasks", headers=bearer(token))
        text = (await client.get("/metrics")).text
        for private in (token, token[:40], user["id"], user["email"], user["name"]):
            assert private not in text


class TestShutdown:
    async def test_lifespan_closes_what_it_opened(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route
    ) -> None:
        app = create_app(settings, clock=clock)
        async for running in started(app):
            await settle(running)
            http = running.state.jwks._client
            assert not http.is_closed
        assert http.is_closed
        assert app.state.metrics.verifier is None  # the collector lets go of the verifier
        # the pool was disposed: nothing is checked out or kept open
        assert app.state.engine.pool.checkedout() == 0


@pytest.fixture
async def two_apps(
    settings: Settings, clock: FrozenClock, jwks_route: respx.Route
) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    first, second = create_app(settings, clock=clock), create_app(settings, clock=clock)
    async for a in started(first):
        async for b in started(second):
            yield a, b


class TestIsolation:
    async def test_each_app_counts_its_own_requests(
        self, two_apps: tuple[FastAPI, FastAPI]
    ) -> None:
        first, second = two_apps
        async with asgi_client(first) as one, asgi_client(second) as other:
            await one.get("/health")
            samples = await scrape(other)
        requests = "http_requests_total"
        assert value(samples, requests, method="GET", route="/health", status="200") == 0
