"""Two signed-up users, A (`user`, `token`) and B (`other_user`, `other_token`), and helpers
to make and count tasks."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from backend.auth.testing import IssuerStub
from tests.conftest import bearer, insert_user, libpq_url


@pytest.fixture
def other_user(issuer: IssuerStub, migrated_database: str) -> dict[str, Any]:
    row = issuer.user(name="Grace Hopper")
    insert_user(migrated_database, row)
    return row


@pytest.fixture
def other_token(issuer: IssuerStub, other_user: dict[str, Any]) -> str:
    return issuer.mint(other_user)


async def create(
    client: httpx.AsyncClient, token: str, title: str, description: str | None = None
) -> dict[str, Any]:
    response = await client.post(
        "/api/me/tasks", json={"title": title, "description": description}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


def count_tasks(database_url: str, user_id: str) -> int:
    with psycopg.connect(libpq_url(database_url)) as conn:
        row = conn.execute("select count(*) from task where user_id = %s", (user_id,)).fetchone()
    assert row is not None
    return int(row[0])


def stored_task(database_url: str, task_id: str) -> dict[str, Any] | None:
    with psycopg.connect(libpq_url(database_url)) as conn:
        cursor = conn.execute(
            "select title, description, completed, user_id from task where id = %s", (task_id,)
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("title", "description", "completed", "user_id"), row, strict=True))
