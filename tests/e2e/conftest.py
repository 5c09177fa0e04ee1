"""Browser-test fixtures: one `next build` per run, a Chromium (Debian's, driven by
playwright), and the whole stack per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.stack import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, Stack, build_frontend, run_stack


@pytest.fixture(scope="session")
def frontend_build() -> None:
    build_frontend()


# Per module, not per session: playwright's sync API runs an event loop on this thread while
# it is open, and the async tests that may follow need the thread without one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: `apt-get install chromium` (make test does it as root) "
            "or set CHROMIUM to a Chromium binary"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(frontend_build: None, postgres_server_url: str) -> Iterator[Stack]:
    with run_stack(postgres_server_url) as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
