"""Fixtures of the studio's browser tests: one real ``framefarm serve`` with two local
render nodes for the session (its first start seeds the example template, as a new user's
does), one Chromium for the session, and a fresh browser context per test.

Settings keep the test renders quick and failures prompt: heartbeats twice a second
(progress and previews arrive soon), two attempts per task with no backoff (a broken node
fails a render within a second; a busy machine's one-off hiccup is retried) and a 2 MiB
upload limit (so a refusal is cheap to provoke).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import DESKTOP, Watch, launch, require_browser
from support.server import Proc, Server

UPLOAD_LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser()
    processes: list[Proc] = []
    data = tmp_path_factory.mktemp("studio") / "data"
    server = Server(processes, data, workers=2, heartbeat_seconds=0.5, lease_seconds=10,
                    max_attempts=2, retry_backoff_seconds=0, max_upload_bytes=UPLOAD_LIMIT)
    try:
        server.start()
        server.wait_nodes("local-0", "local-1")
        yield server
    finally:
        server.stop_and_close()
        for proc in reversed(processes):
            proc.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = launch(playwright)
        yield found
        found.close()


@pytest.fixture
def new_page(browser: Any, studio_server: Server) -> Iterator[Callable[..., Any]]:
    """``new_page(viewport=..., key=...)``: a page in a fresh context (nothing stored), its
    misbehaviour watched and asserted absent at the end."""
    made: list[tuple[Any, Watch]] = []

    def make(viewport: dict[str, int] | None = None, key: str | None = None) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True,
                                      base_url=studio_server.url, locale="en-GB")
        context.grant_permissions(["clipboard-read", "clipboard-write"],
                                  origin=studio_server.url)
        context.set_default_timeout(30_000)
        page = context.new_page()
        watch = Watch(page, key if key is not None else studio_server.key)
        page.watch = watch
        made.append((context, watch))
        return page

    yield make
    try:
        for _, watch in made:
            watch.check()
    finally:
        for context, _ in made:
            context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


@pytest.fixture(scope="session")
def example_template(studio_server: Server) -> dict[str, Any]:
    """The template ``framefarm serve`` seeded for the first tenant."""
    found = studio_server.get("/v1/templates")
    assert [t["name"] for t in found] == ["Title card"], found
    return dict(found[0])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    return tmp_path
