"""A real browser for the tests: the distribution's Chromium (Debian's `chromium`, tests/prerequisites.sh),
driven by Playwright, which launches it itself (Playwright's own browser builds are never downloaded).

    with browser_page() as page:
        page.goto(path.as_uri())
        page.locator("[data-plot=disk] table").inner_text()
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Page, sync_playwright

CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system's Chromium, or a clear failure naming the package to install."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("no Chromium on this machine: apt-get install chromium (or bash tests/prerequisites.sh)")


@contextmanager
def browser_page(timeout_ms: int = 30_000, resolve: dict[str, str] | None = None, **context_options) -> Iterator[Page]:
    """A page of a headless Chromium in a fresh profile; resolve: host name patterns (*.hub.test) ->
    the address Chromium connects to for them; context_options go to Playwright's new_context
    (ignore_https_errors, base_url, viewport, ...)."""
    with browser_pages(1, timeout_ms, resolve, **context_options) as (page,):
        yield page


@contextmanager
def browser_pages(
    count: int, timeout_ms: int = 30_000, resolve: dict[str, str] | None = None, **context_options
) -> Iterator[list[Page]]:
    """count pages of one headless Chromium, each in a profile of its own (two people side by side)."""
    # Chromium refuses to run as root with its sandbox (the tests' containers and CI run as root).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    if resolve:
        args.append("--host-resolver-rules=" + ", ".join(f"MAP {name} {address}" for name, address in resolve.items()))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
        try:
            pages = []
            for _ in range(count):
                context = browser.new_context(**context_options)
                context.set_default_timeout(timeout_ms)
                pages.append(context.new_page())
            yield pages
        finally:
            browser.close()
