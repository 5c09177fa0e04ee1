"""The app around the verifier: /health, /ready, /api/me, CORS and the body size cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import respx
from fastapi import FastAPI

from backend.auth.testing import IssuerStub
from backend.config import Settings
from backend.main import create_app
from tests.conftest import FrozenClock, bearer, settle, started
from tests.tasks.conftest import count_tasks


class TestHealth:
    async def test_health_touches_nothing(
        self, client: httpx.AsyncClient, jwks_route: respx.Route
    ) -> None:
        calls = jwks_route.call_count
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert jwks_route.call_count == calls


class TestReady:
    async def test_ready_when_database_and_keys_are(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "database": "ok", "signing_keys": "ok"}

    async def test_not_ready_without_keys(
        self, settings: Settings, clock: FrozenClock, jwks_mock: respx.Router, issuer: IssuerStub
    ) -> None:
        jwks_mock.get(issuer.jwks_url).mock(return_value=httpx.Response(503))
        app = create_app(settings, clock=clock)
        async for running in started(app):
            await settle(running)
            async with asgi_client(running) as client:
                response = await client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["database"] == "ok"
        assert body["signing_keys"] == "not loaded: HTTP 503"

    async def test_not_ready_without_database(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route
    ) -> None:
        down = settings.model_copy(
            update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
        )
        app = create_app(down, clock=clock)
        async for running in started(app):
            await settle(running)
            async with asgi_client(running) as client:
                response = await client.get("/ready")
        assert response.status_code == 503
        assert response.json()["database"].startswith("unreachable")
        assert response.json()["signing_keys"] == "ok"


class TestMe:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_current_user(
        self, client: httpx.AsyncClient, user: dict[str, Any], token: str
    ) -> None:
        response = await client.get("/api/me", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == {
            "id": user["id"],
            "email": user["email"],
            "name": user["name"],
            "emailVerified": False,
            "image": None,
        }

    async def test_database_down_is_503_not_500(
        self, settings: Settings, clock: FrozenClock, jwks_route: respx.Route, token: str
    ) -> None:
        down = settings.model_copy(
            update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
        )
        app = create_app(down, clock=clock)
        async for running in started(app):
            await settle(running)
            async with asgi_client(running) as client:
                response = await client.get("/api/me", headers=bearer(token))
        assert response.status_code == 503
        assert "retry-after" in response.headers


class TestCORS:
    async def test_preflight_from_the_frontend(self, client: httpx.AsyncClient) -> None:
        response = await client.options(
            "/api/me",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "access-control-allow-credentials" not in response.headers

    async def test_preflight_from_elsewhere(self, client: httpx.AsyncClient) -> None:
        response = await client.options(
            "/api/me",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers


class TestBodySizeLimit:
    async def test_declared_length_over_the_cap(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/me", content=b"x" * (1024 * 1024 + 1))
        assert response.status_code == 413

    async def test_streamed_body_cut_at_the_cap(
        self, client: httpx.AsyncClient, token: str, user: dict[str, Any], migrated_database: str
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"title": "t", "description": "'
            for _ in range(11):
                yield b"d" * (100 * 1024)
            yield b'"}'

        response = await client.post(
            "/api/me/tasks",
            content=chunks(),
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert count_tasks(migrated_database, user["id"]) == 0


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
