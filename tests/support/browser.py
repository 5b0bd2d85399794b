"""A page of the system's Chromium, driven by Playwright, that can reach loopback only.

Every request the page makes is recorded and anything not bound for loopback is refused,
so a page passes only if it needs nothing from the internet; a resource its
Content-Security-Policy blocks is recorded too (as `console: …`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, sync_playwright

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@contextmanager
def offline_page() -> Iterator[tuple[Page, list[str]]]:
    """The page and what it requested; skips the test where no Chromium is installed."""
    if BROWSER is None:
        pytest.skip("no Chromium found (install Debian's `chromium`): the browser test did not run")
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=BROWSER,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.on(
            "console",
            lambda message: (
                requested.append(f"console: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )

        def offline(route: Route) -> None:
            if urlsplit(route.request.url).hostname in LOOPBACK:
                route.continue_()
            else:
                route.abort("internetdisconnected")

        page.route("**/*", offline)
        try:
            yield page, requested
        finally:
            browser.close()
