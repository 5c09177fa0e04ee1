"""The task endpoints, one class per endpoint, the anonymous case first.

SECURITY_CASES 22-24: another user's task is a 404 byte-identical to a missing one, on every
endpoint; a body never moves a task to another user; malformed ids never 500; an expired
token on a mutation changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import FrozenClock, bearer, delete_user
from tests.tasks.conftest import count_tasks, create, stored_task

MISSING = str(uuid.UUID(int=0))


async def not_found_body(client: httpx.AsyncClient, token: str) -> bytes:
    """What a request for a task that does not exist answers: the reference 404."""
    response = await client.get(f"/api/me/tasks/{MISSING}", headers=bearer(token))
    assert response.status_code == 404
    return response.content


class TestListTasks:
    async def test_anonymous(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/me/tasks")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_empty(self, client: httpx.AsyncClient, token: str) -> None:
        response = await client.get("/api/me/tasks", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == []
        assert response.headers["x-total-count"] == "0"

    async def test_only_own_tasks(
        self,
        client: httpx.AsyncClient,
        token: str,
        other_token: str,
        user: dict[str, Any],
    ) -> None:
        mine = await create(client, token, "mine")
        await create(client, other_token, "theirs")
        for path in ("/api/me/tasks", f"/api/{user['id']}/tasks"):
            response = await client.get(path, headers=bearer(token))
            assert [t["id"] for t in response.json()] == [mine["id"]]
            assert response.headers["x-total-count"] == "1"

    async def test_other_users_id_in_path(
        self, client: httpx.AsyncClient, token: str, other_user: dict[str, Any]
    ) -> None:
        response = await client.get(f"/api/{other_user['id']}/tasks", headers=bearer(token))
        assert response.status_code == 404
        assert response.content == await not_found_body(client, token)

    async def test_status_filter(self, client: httpx.AsyncClient, token: str) -> None:
        done = await create(client, token, "done")
        todo = await create(client, token, "todo")
        await client.patch(f"/api/me/tasks/{done['id']}/complete", headers=bearer(token))

        async def ids(status: str) -> list[str]:
            response = await client.get(
                "/api/me/tasks", params={"status": status}, headers=bearer(token)
            )
            return [t["id"] for t in response.json()]

        assert await ids("completed") == [done["id"]]
        assert await ids("pending") == [todo["id"]]
        assert sorted(await ids("all")) == sorted([done["id"], todo["id"]])

    async def test_search_title_and_description(
        self, client: httpx.AsyncClient, token: str
    ) -> None:
        by_title = await create(client, token, "Buy MILK")
        by_description = await create(client, token, "Groceries", "oat milk, eggs")
        await create(client, token, "Call mom")
        literal = await create(client, token, "100% done_now")

        async def search(q: str) -> set[str]:
            response = await client.get("/api/me/tasks", params={"q": q}, headers=bearer(token))
            assert response.status_code == 200
            return {t["id"] for t in response.json()}

        assert await search("milk") == {by_title["id"], by_description["id"]}
        assert await search("%") == {literal["id"]}  # LIKE wildcards are literal text
        assert await search("e_n") == {literal["id"]}
        assert await search("nothing like it") == set()

    @pytest.mark.parametrize(
        ("sort", "order", "expected"),
        [
            ("title", "asc", ["a", "b", "c"]),
            ("title", "desc", ["c", "b", "a"]),
            ("created_at", "asc", ["b", "c", "a"]),
            ("created_at", "desc", ["a", "c", "b"]),
            ("updated_at", "desc", ["c", "a", "b"]),
        ],
    )
    async def test_sort(
        self, client: httpx.AsyncClient, token: str, sort: str, order: str, expected: list[str]
    ) -> None:
        await create(client, token, "b")
        c = await create(client, token, "c")
        await create(client, token, "a")
        await client.put(f"/api/me/tasks/{c['id']}", json={"title": "c"}, headers=bearer(token))
        response = await client.get(
            "/api/me/tasks", params={"sort": sort, "order": order}, headers=bearer(token)
        )
        assert [t["title"] for t in response.json()] == expected

    async def test_pagination(self, client: httpx.AsyncClient, token: str) -> None:
        titles = [f"task {i:02}" for i in range(7)]
        for title in titles:
            await create(client, token, title)
        pages = []
        for offset in (0, 3, 6):
            response = await client.get(
                "/api/me/tasks",
                params={"sort": "title", "order": "asc", "limit": 3, "offset": offset},
                headers=bearer(token),
            )
            assert response.headers["x-total-count"] == "7"
            pages.append([t["title"] for t in response.json()])
        assert pages == [titles[0:3], titles[3:6], titles[6:7]]

    async def test_total_count_follows_every_change(
        self, client: httpx.AsyncClient, token: str, other_token: str
    ) -> None:
        """X-Total-Count comes from counts a trigger keeps: they follow creates, toggles,
        updates and deletes, per status, and never mix users."""
        tasks = [await create(client, token, f"t{i}") for i in range(5)]
        await create(client, other_token, "not mine")
        for task in tasks[:2]:
            await client.patch(f"/api/me/tasks/{task['id']}/complete", headers=bearer(token))
        await client.put(
            f"/api/me/tasks/{tasks[2]['id']}",
            json={"title": "t2", "completed": True},
            headers=bearer(token),
        )
        await client.delete(f"/api/me/tasks/{tasks[0]['id']}", headers=bearer(token))

        async def total(status: str) -> int:
            response = await client.get(
                "/api/me/tasks", params={"status": status, "limit": 1}, headers=bearer(token)
            )
            return int(response.headers["x-total-count"])

        assert (await total("all"), await total("completed"), await total("pending")) == (4, 2, 2)

    async def test_default_page_is_50(self, client: httpx.AsyncClient, token: str) -> None:
        for i in range(51):
            await create(client, token, f"t{i}")
        response = await client.get("/api/me/tasks", headers=bearer(token))
        assert len(response.json()) == 50
        assert response.headers["x-total-count"] == "51"

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 201},
            {"limit": "ten"},
            {"offset": -1},
            {"offset": 10**20},
            {"status": "done"},
            {"sort": "user_id"},
            {"order": "up"},
            {"q": "x" * 201},
        ],
    )
    async def test_invalid_query(
        self, client: httpx.AsyncClient, token: str, params: dict[str, Any]
    ) -> None:
        response = await client.get("/api/me/tasks", params=params, headers=bearer(token))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][0] == "query"


class TestCreateTask:
    async def test_anonymous(
        self, client: httpx.AsyncClient, user: dict[str, Any], migrated_database: str
    ) -> None:
        response = await client.post("/api/me/tasks", json={"title": "x"})
        assert response.status_code == 401
        assert count_tasks(migrated_database, user["id"]) == 0

    async def test_created(
        self, client: httpx.AsyncClient, token: str, user: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/api/me/tasks",
            json={"title": "  Write the report  ", "description": "by Friday"},
            headers=bearer(token),
        )
        assert response.status_code == 201
        task = response.json()
        assert response.headers["location"] == f"/api/{user['id']}/tasks/{task['id']}"
        assert task["title"] == "Write the report"
        assert task["description"] == "by Friday"
        assert task["completed"] is False
        assert task["user_id"] == user["id"]
        assert task["created_at"].endswith("Z")
        assert task["created_at"] == task["updated_at"]
        fetched = await client.get(response.headers["location"], headers=bearer(token))
        assert fetched.json() == task

    async def test_description_optional(self, client: httpx.AsyncClient, token: str) -> None:
        response = await client.post("/api/me/tasks", json={"title": "t"}, headers=bearer(token))
        assert response.status_code == 201
        assert response.json()["description"] is None

    async def test_limits_inclusive(self, client: httpx.AsyncClient, token: str) -> None:
        body = {"title": "t" * 200, "description": "d" * 1000}
        response = await client.post("/api/me/tasks", json=body, headers=bearer(token))
        assert response.status_code == 201
        assert response.json()["title"] == "t" * 200

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"title": ""},
            {"title": "   "},
            {"title": "t" * 201},
            {"title": "t", "description": "d" * 1001},
            {"title": 5},
            {"title": None},
            {"title": "t", "user_id": "someone-else"},
            {"title": "t", "completed": True},
            ["title"],
        ],
    )
    async def test_invalid_body(
        self,
        client: httpx.AsyncClient,
        token: str,
        user: dict[str, Any],
        migrated_database: str,
        body: Any,
    ) -> None:
        response = await client.post("/api/me/tasks", json=body, headers=bearer(token))
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][0] == "body"
        assert count_tasks(migrated_database, user["id"]) == 0

    async def test_not_json(self, client: httpx.AsyncClient, token: str) -> None:
        response = await client.post(
            "/api/me/tasks",
            content=b"{not json",
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert response.status_code == 422

    async def test_for_another_user(
        self,
        client: httpx.AsyncClient,
        token: str,
        other_user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        response = await client.post(
            f"/api/{other_user['id']}/tasks", json={"title": "planted"}, headers=bearer(token)
        )
        assert response.status_code == 404
        assert response.content == await not_found_body(client, token)
        assert count_tasks(migrated_database, other_user["id"]) == 0

    async def test_body_over_the_cap(self, client: httpx.AsyncClient, token: str) -> None:
        body = {"title": "t", "description": "d" * (1024 * 1024)}
        response = await client.post("/api/me/tasks", json=body, headers=bearer(token))
        assert response.status_code == 413

    async def test_expired_token(
        self,
        client: httpx.AsyncClient,
        token: str,
        clock: FrozenClock,
        user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        clock.advance(900 + 31)  # Better Auth's 15 minutes, plus the leeway
        response = await client.post("/api/me/tasks", json={"title": "x"}, headers=bearer(token))
        assert response.status_code == 401
        assert count_tasks(migrated_database, user["id"]) == 0


class TestReadTask:
    async def test_anonymous(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t")
        response = await client.get(f"/api/me/tasks/{task['id']}")
        assert response.status_code == 401

    async def test_own(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t")
        response = await client.get(f"/api/me/tasks/{task['id']}", headers=bearer(token))
        assert response.status_code == 200
        assert response.json() == task

    async def test_another_users_task(
        self, client: httpx.AsyncClient, token: str, other_token: str, other_user: dict[str, Any]
    ) -> None:
        theirs = await create(client, other_token, "secret")
        reference = await not_found_body(client, token)
        for owner in ("me", other_user["id"]):
            response = await client.get(f"/api/{owner}/tasks/{theirs['id']}", headers=bearer(token))
            assert response.status_code == 404
            assert response.content == reference

    @pytest.mark.parametrize("task_id", ["1", "not-a-uuid", "' or 1=1 --", "%00", "9" * 300])
    async def test_malformed_id(self, client: httpx.AsyncClient, token: str, task_id: str) -> None:
        response = await client.get(f"/api/me/tasks/{task_id}", headers=bearer(token))
        assert response.status_code in (404, 422)


class TestUpdateTask:
    async def test_anonymous(
        self, client: httpx.AsyncClient, token: str, migrated_database: str
    ) -> None:
        task = await create(client, token, "t")
        response = await client.put(f"/api/me/tasks/{task['id']}", json={"title": "u"})
        assert response.status_code == 401
        assert stored_task(migrated_database, task["id"])["title"] == "t"  # type: ignore[index]

    async def test_updated(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t", "d")
        response = await client.put(
            f"/api/me/tasks/{task['id']}",
            json={"title": " new ", "description": None, "completed": True},
            headers=bearer(token),
        )
        assert response.status_code == 200
        updated = response.json()
        assert (updated["title"], updated["description"], updated["completed"]) == (
            "new",
            None,
            True,
        )
        assert updated["created_at"] == task["created_at"]
        assert updated["updated_at"] > task["updated_at"]

    async def test_completed_unchanged_when_left_out(
        self, client: httpx.AsyncClient, token: str
    ) -> None:
        task = await create(client, token, "t")
        await client.patch(f"/api/me/tasks/{task['id']}/complete", headers=bearer(token))
        response = await client.put(
            f"/api/me/tasks/{task['id']}", json={"title": "u"}, headers=bearer(token)
        )
        assert response.json()["completed"] is True

    async def test_another_users_task(
        self,
        client: httpx.AsyncClient,
        token: str,
        other_token: str,
        other_user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        theirs = await create(client, other_token, "theirs")
        reference = await not_found_body(client, token)
        for owner in ("me", other_user["id"]):
            response = await client.put(
                f"/api/{owner}/tasks/{theirs['id']}",
                json={"title": "hijacked"},
                headers=bearer(token),
            )
            assert response.status_code == 404
            assert response.content == reference
        assert stored_task(migrated_database, theirs["id"]) == {
            "title": "theirs",
            "description": None,
            "completed": False,
            "user_id": other_user["id"],
        }

    async def test_body_cannot_move_task(
        self,
        client: httpx.AsyncClient,
        token: str,
        user: dict[str, Any],
        other_user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        task = await create(client, token, "t")
        response = await client.put(
            f"/api/me/tasks/{task['id']}",
            json={"title": "t", "user_id": other_user["id"]},
            headers=bearer(token),
        )
        assert response.status_code == 422
        assert stored_task(migrated_database, task["id"])["user_id"] == user["id"]  # type: ignore[index]

    @pytest.mark.parametrize(
        "body", [{}, {"title": ""}, {"title": "t" * 201}, {"title": "t", "completed": "yes"}]
    )
    async def test_invalid_body(
        self, client: httpx.AsyncClient, token: str, migrated_database: str, body: Any
    ) -> None:
        task = await create(client, token, "t")
        response = await client.put(f"/api/me/tasks/{task['id']}", json=body, headers=bearer(token))
        assert response.status_code == 422
        assert stored_task(migrated_database, task["id"])["title"] == "t"  # type: ignore[index]

    async def test_expired_token(
        self, client: httpx.AsyncClient, token: str, clock: FrozenClock, migrated_database: str
    ) -> None:
        task = await create(client, token, "t")
        clock.advance(900 + 31)
        response = await client.put(
            f"/api/me/tasks/{task['id']}", json={"title": "late"}, headers=bearer(token)
        )
        assert response.status_code == 401
        assert stored_task(migrated_database, task["id"])["title"] == "t"  # type: ignore[index]


class TestDeleteTask:
    async def test_anonymous(
        self, client: httpx.AsyncClient, token: str, migrated_database: str
    ) -> None:
        task = await create(client, token, "t")
        response = await client.delete(f"/api/me/tasks/{task['id']}")
        assert response.status_code == 401
        assert stored_task(migrated_database, task["id"]) is not None

    async def test_deleted(
        self, client: httpx.AsyncClient, token: str, migrated_database: str
    ) -> None:
        task = await create(client, token, "t")
        response = await client.delete(f"/api/me/tasks/{task['id']}", headers=bearer(token))
        assert response.status_code == 204
        assert response.content == b""
        assert stored_task(migrated_database, task["id"]) is None
        again = await client.delete(f"/api/me/tasks/{task['id']}", headers=bearer(token))
        assert again.status_code == 404

    async def test_another_users_task(
        self,
        client: httpx.AsyncClient,
        token: str,
        other_token: str,
        other_user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        theirs = await create(client, other_token, "theirs")
        reference = await not_found_body(client, token)
        for owner in ("me", other_user["id"]):
            response = await client.delete(
                f"/api/{owner}/tasks/{theirs['id']}", headers=bearer(token)
            )
            assert response.status_code == 404
            assert response.content == reference
        assert stored_task(migrated_database, theirs["id"]) is not None

    async def test_expired_token(
        self, client: httpx.AsyncClient, token: str, clock: FrozenClock, migrated_database: str
    ) -> None:
        task = await create(client, token, "t")
        clock.advance(900 + 31)
        response = await client.delete(f"/api/me/tasks/{task['id']}", headers=bearer(token))
        assert response.status_code == 401
        assert stored_task(migrated_database, task["id"]) is not None


class TestCompleteTask:
    async def test_anonymous(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t")
        response = await client.patch(f"/api/me/tasks/{task['id']}/complete")
        assert response.status_code == 401

    async def test_toggles_without_body(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t")
        path = f"/api/me/tasks/{task['id']}/complete"
        first = await client.patch(path, headers=bearer(token))
        second = await client.patch(path, headers=bearer(token))
        assert (first.status_code, first.json()["completed"]) == (200, True)
        assert second.json()["completed"] is False
        assert first.json()["updated_at"] >= task["updated_at"]

    @pytest.mark.parametrize("completed", [True, False])
    async def test_sets_from_body(
        self, client: httpx.AsyncClient, token: str, completed: bool
    ) -> None:
        task = await create(client, token, "t")
        path = f"/api/me/tasks/{task['id']}/complete"
        for _ in range(2):  # idempotent: setting twice is still that value
            response = await client.patch(
                path, json={"completed": completed}, headers=bearer(token)
            )
            assert response.json()["completed"] is completed

    async def test_empty_object_toggles(self, client: httpx.AsyncClient, token: str) -> None:
        task = await create(client, token, "t")
        response = await client.patch(
            f"/api/me/tasks/{task['id']}/complete", json={}, headers=bearer(token)
        )
        assert response.json()["completed"] is True

    @pytest.mark.parametrize("body", [{"completed": "yes"}, {"done": True}, [True]])
    async def test_invalid_body(self, client: httpx.AsyncClient, token: str, body: Any) -> None:
        task = await create(client, token, "t")
        response = await client.patch(
            f"/api/me/tasks/{task['id']}/complete", json=body, headers=bearer(token)
        )
        assert response.status_code == 422

    async def test_another_users_task(
        self,
        client: httpx.AsyncClient,
        token: str,
        other_token: str,
        other_user: dict[str, Any],
        migrated_database: str,
    ) -> None:
        theirs = await create(client, other_token, "theirs")
        reference = await not_found_body(client, token)
        for owner in ("me", other_user["id"]):
            response = await client.patch(
                f"/api/{owner}/tasks/{theirs['id']}/complete", headers=bearer(token)
            )
            assert response.status_code == 404
            assert response.content == reference
        assert stored_task(migrated_database, theirs["id"])["completed"] is False  # type: ignore[index]


class TestUserDeletion:
    async def test_tasks_go_with_the_user(
        self, client: httpx.AsyncClient, token: str, user: dict[str, Any], migrated_database: str
    ) -> None:
        await create(client, token, "t1")
        await create(client, token, "t2")
        assert count_tasks(migrated_database, user["id"]) == 2
        delete_user(migrated_database, user["id"])
        assert count_tasks(migrated_database, user["id"]) == 0
