"""An expired JWT in the client is renewed without the user noticing: tokens live 10 s here
and the backend allows no leeway, so the second action must run on a renewed token."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.stack import Stack, run_stack
from tests.e2e.test_browser import add_task, sign_up

LIFETIME_S = 10


@pytest.fixture(scope="module")
def short_lived_stack(frontend_build: None, postgres_server_url: str) -> Iterator[Stack]:
    with run_stack(
        postgres_server_url, jwt_expiration=f"{LIFETIME_S}s", leeway_s=0, label="renewal"
    ) as running:
        yield running


def test_expired_token_is_renewed_silently(page: Page, short_lived_stack: Stack) -> None:
    token_requests: list[str] = []

    def count(request: Request) -> None:
        if request.url.endswith("/api/auth/token"):
            token_requests.append(request.url)

    page.on("request", count)
    sign_up(page, short_lived_stack, "Edsger")
    add_task(page, "before expiry")
    issued = len(token_requests)
    assert issued >= 1

    time.sleep(LIFETIME_S + 2)  # the token in memory has expired
    add_task(page, "after expiry")

    assert len(token_requests) > issued  # a new token was fetched...
    expect(page.get_by_role("alert")).to_have_count(0)  # ...and the user saw nothing of it
    expect(page).to_have_url(f"{short_lived_stack.frontend_url}/tasks")
    page.reload()
    expect(page.get_by_role("listitem")).to_have_count(2)
