"""A real Chromium through the real Next.js + Better Auth frontend and the real backend:
two users, the full task lifecycle, reloads, sign-out, and isolation between users."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.stack import Stack

PASSWORD = "correct horse battery staple"


def sign_up(page: Page, stack: Stack, name: str) -> str:
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    page.goto(f"{stack.frontend_url}/sign-up")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(f"{stack.frontend_url}/tasks")
    return email


def add_task(page: Page, title: str, description: str = "") -> None:
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Add task").click()
    expect(task_item(page, title)).to_be_visible()


def task_item(page: Page, title: str) -> Any:
    return page.get_by_role("listitem").filter(has=page.get_by_role("checkbox", name=title))


def jwt_of(page: Page, stack: Stack) -> str:
    """The signed-in browser's JWT, as the frontend gets it from Better Auth."""
    token: str = page.evaluate(
        """async (url) => {
            const response = await fetch(url + "/api/auth/token", {credentials: "include"});
            return (await response.json()).token;
        }""",
        stack.frontend_url,
    )
    return token


def test_two_users_full_lifecycle(page: Page, stack: Stack) -> None:
    sign_up(page, stack, "Ada")
    add_task(page, "Buy milk", "oat, 2 litres")
    add_task(page, "Write report")
    add_task(page, "Call mom")

    # complete one
    page.get_by_role("checkbox", name="Buy milk").check()
    expect(page.get_by_role("checkbox", name="Buy milk")).to_be_checked()

    # edit one: Edit -> "Edit title" field holding the title -> Enter saves
    task_item(page, "Write report").get_by_role("button", name="Edit").click()
    field = page.get_by_label("Edit title")
    expect(field).to_have_value("Write report")
    field.fill("Write the report")
    field.press("Enter")
    expect(task_item(page, "Write the report")).to_be_visible()

    # Escape cancels an edit
    task_item(page, "Write the report").get_by_role("button", name="Edit").click()
    page.get_by_label("Edit title").fill("never saved")
    page.get_by_label("Edit title").press("Escape")
    expect(task_item(page, "Write the report")).to_be_visible()

    # delete one, at once
    task_item(page, "Call mom").get_by_role("button", name="Delete").click()
    expect(task_item(page, "Call mom")).to_have_count(0)

    # the filter group
    filters = page.get_by_role("group", name="Filter")
    filters.get_by_role("button", name="Completed").click()
    expect(filters.get_by_role("button", name="Completed")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(page.get_by_role("listitem")).to_have_count(1)
    expect(task_item(page, "Buy milk")).to_be_visible()
    filters.get_by_role("button", name="All").click()

    # reload: the same state comes back from the backend
    page.reload()
    expect(page.get_by_role("listitem")).to_have_count(2)
    expect(page.get_by_role("checkbox", name="Buy milk")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Write the report")).not_to_be_checked()
    screenshot(page, "tasks")
    page.set_viewport_size({"width": 375, "height": 740})
    screenshot(page, "tasks-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    ada_token = jwt_of(page, stack)
    ada_tasks = httpx.get(
        f"{stack.backend_url}/api/me/tasks", headers={"Authorization": f"Bearer {ada_token}"}
    ).json()
    assert sorted(t["title"] for t in ada_tasks) == ["Buy milk", "Write the report"]
    ada_id = ada_tasks[0]["user_id"]

    # sign out -> /sign-in; /tasks is closed to the signed-out
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    screenshot(page, "sign-in")
    page.goto(f"{stack.frontend_url}/tasks")
    expect(page).to_have_url(re.compile(r"/sign-in"))

    # a second user sees none of the first user's tasks
    page.get_by_role("link", name=re.compile("sign up", re.IGNORECASE)).click()
    expect(page).to_have_url(re.compile(r"/sign-up"))
    sign_up(page, stack, "Grace")
    expect(page.get_by_role("heading").first).to_be_visible()
    expect(page.get_by_role("listitem")).to_have_count(0)

    grace = {"Authorization": f"Bearer {jwt_of(page, stack)}"}
    for task in ada_tasks:
        response = httpx.get(f"{stack.backend_url}/api/me/tasks/{task['id']}", headers=grace)
        assert response.status_code == 404
    assert httpx.get(f"{stack.backend_url}/api/{ada_id}/tasks", headers=grace).status_code == 404


def test_wrong_password_is_explained(page: Page, stack: Stack) -> None:
    email = sign_up(page, stack, "Alan")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{stack.frontend_url}/tasks")


def test_sign_up_mistakes_are_explained(page: Page, stack: Stack) -> None:
    email = sign_up(page, stack, "Barbara")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))

    page.goto(f"{stack.frontend_url}/sign-up")
    page.get_by_label("Name").fill("Barbara again")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("already exists")

    page.get_by_label("Email").fill(f"new-{email}")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("alert")).to_contain_text("too weak")
    expect(page).to_have_url(re.compile(r"/sign-up"))
