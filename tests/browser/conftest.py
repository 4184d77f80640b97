"""The browser rig: Debian's `chromium` driven by Playwright for Python, headless.

- `chromium_executable`: the system browser (`chromium` on PATH, else /usr/bin/chromium).
  Playwright's own browsers are never used, so `playwright install` (a download) is never
  needed. Without chromium the browser tests skip, saying how to install it — except under CI
  (env `CI` set, as `.ci/run` does), where they fail: CI always runs them.
- `browser`: one chromium for the whole session, on the session's event loop. Every browser
  test module therefore runs on that loop: `pytestmark = pytest.mark.asyncio(loop_scope=
  "session")`, and its async fixtures take `loop_scope="session"` too.
- `context` / `page`: a fresh browser context per test (no cookies shared between tests);
  `contexts.new()` makes more (another person, a phone-sized screen). The pages must work
  offline: every request to a host other than 127.0.0.1 is aborted and recorded, and so is
  every page error and console error (a CSP violation is one); the test fails at teardown if
  there were any (`guard.expected` lists the ones it provokes).
- `shots`: `await shots.take(page, "name")` saves a full-page PNG in one folder per session
  (under pytest's tmp folders; the path is printed at the end of the run) and, when
  `SORA_SCREENSHOTS_DIR` is set, a copy there for a human to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    async_playwright,
)

#: How long one Playwright step may take (2 busy cores: generous, and only a ceiling).
STEP_MS = 15_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_SHOTS_KEY = pytest.StashKey[Path]()


def find_chromium() -> str | None:
    """The system chromium's executable, or None."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    found = find_chromium()
    if found is None:
        reason = "no chromium browser installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but there is {reason}")
        pytest.skip(reason)
    return found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(playwright: Playwright, chromium_executable: str) -> AsyncIterator[Browser]:
    launched = await playwright.chromium.launch(
        executable_path=chromium_executable,
        headless=True,
        # Let a test start a player with play() (no click gesture): the test is about what
        # the page serves and plays, not about the browser's autoplay policy.
        # /dev/shm is small in containers (Docker: 64 MB); chromium then uses /tmp instead.
        args=[
            "--autoplay-policy=no-user-gesture-required",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ],
    )
    yield launched
    await launched.close()


@dataclass
class Guard:
    """What a context did that a page working offline, without errors, would not."""

    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Console errors a test provokes on purpose (e.g. "403" for a refused page).
    expected: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        unexpected = [e for e in self.errors if not any(x in e for x in self.expected)]
        return [f"request off this machine: {u}" for u in self.blocked] + unexpected


@pytest.fixture
def guard() -> Guard:
    return Guard()


class Contexts:
    """Browser contexts (separate cookie jars: separate people) that share one `Guard`."""

    def __init__(self, browser: Browser, guard: Guard) -> None:
        self.browser = browser
        self.guard = guard
        self.made: list[BrowserContext] = []

    async def new(self, **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        made = await self.browser.new_context(**options)
        made.set_default_timeout(STEP_MS)
        guard = self.guard

        async def offline(route: Route, request: Request) -> None:
            if urlsplit(request.url).hostname in LOCAL_HOSTS or request.url.startswith("data:"):
                await route.continue_()
            else:
                guard.blocked.append(request.url)
                await route.abort()

        await made.route("**/*", offline)

        def on_page(page: Page) -> None:
            page.on("pageerror", lambda exc: guard.errors.append(f"page error: {exc}"))

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    guard.errors.append(f"console error: {message.text} ({page.url})")

            page.on("console", console)

        made.on("page", on_page)
        self.made.append(made)
        return made

    async def close(self) -> None:
        for made in self.made:
            await made.close()


@pytest_asyncio.fixture(loop_scope="session")
async def contexts(browser: Browser, guard: Guard) -> AsyncIterator[Contexts]:
    made = Contexts(browser, guard)
    yield made
    await made.close()
    assert guard.problems() == [], "the pages must work offline and without errors"


@pytest_asyncio.fixture(loop_scope="session")
async def context(contexts: Contexts) -> BrowserContext:
    return await contexts.new()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


class Shots:
    """Full-page screenshots, numbered in the order they were taken."""

    def __init__(self, folder: Path, copy_to: Path | None) -> None:
        self.folder = folder
        self.copy_to = copy_to
        self.taken: list[Path] = []

    async def take(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        # What a person would see once the page has loaded: its (eager) images are in. (A
        # wait_for_function predicate is a function, never an expression: Playwright evals an
        # expression in the page, which the gallery's CSP rightly refuses.)
        await page.wait_for_function(
            "() => [...document.images].filter(i => i.loading !== 'lazy').every(i => i.complete)"
        )
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        if self.copy_to is not None:
            self.copy_to.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, self.copy_to / path.name)
        return path


@pytest.fixture(scope="session")
def shots(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shots]:
    folder = tmp_path_factory.mktemp("screenshots")
    request.config.stash[_SHOTS_KEY] = folder
    copy = os.environ.get("SORA_SCREENSHOTS_DIR")
    print(f"\nbrowser screenshots: {folder}")
    yield Shots(folder, Path(copy) if copy else None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    folder = terminalreporter.config.stash.get(_SHOTS_KEY, None)
    if folder is not None:
        copy = os.environ.get("SORA_SCREENSHOTS_DIR")
        also = f" (copied to {copy})" if copy else " (set SORA_SCREENSHOTS_DIR to keep a copy)"
        terminalreporter.write_line(f"browser screenshots: {folder}{also}")
