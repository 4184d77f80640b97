"""End to end in a real browser (Debian's chromium, headless, through Playwright): a team orders
videos with `/sora` in (fake) Slack, opens the gallery from the link `/sora gallery` answers
with, plays a video, filters, and an admin decides a pending approval on the dashboard.

One bot for the module (tests/browser/world.py), one browser for the session, a fresh context
(cookies) per test. Every wait is on an event or a condition in the page (wait_for_function,
expect), never a fixed sleep. Screenshots go to the folder printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Page, Response

from tests.browser.conftest import Shots
from tests.browser.world import ALICE, BOB, OTHER_MODEL, GalleryWorld, gallery_world

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The media element has played this far: playback really advances.
PLAYED = 0.5


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GalleryWorld]:
    async with gallery_world(tmp_path_factory.mktemp("gallery-bot")) as made:
        yield made


async def play(page: Page, selector: str = "video") -> float:
    """Start the player and wait until its currentTime passes PLAYED; the time reached."""
    await page.wait_for_function(
        "s => { const v = document.querySelector(s); return v && v.readyState >= 1 }",
        arg=selector,
    )
    await page.evaluate("s => document.querySelector(s).play()", selector)
    await page.wait_for_function(
        "([s, t]) => document.querySelector(s).currentTime > t", arg=[selector, PLAYED]
    )
    played: float = await page.evaluate("s => document.querySelector(s).currentTime", selector)
    return played


async def test_a_hosted_media_link_plays_and_seeks(
    world: GalleryWorld, page: Page, shots: Shots
) -> None:
    """The bot's own /media link (Slack's fallback when an upload is refused) plays in
    chromium, and seeking is answered with a byte range (206)."""
    world.fake.refuse_uploads = "file_too_large"
    try:
        job = await world.order("a lighthouse in a storm", BOB)
        replies = await world.fake.wait_for(
            lambda: [
                c.args["text"]
                for c in world.fake.ok_calls_to("chat.postMessage")
                if c.args.get("thread_ts") == job.surface.thread and "/media/" in c.args["text"]
            ]
        )
    finally:
        world.fake.refuse_uploads = None
    link = replies[-1].rsplit(" ", 1)[-1]
    assert link.startswith(f"{world.base_url}/media/")
    ranges: list[int] = []

    def seen(resp: Response) -> None:
        if "/media/" in resp.url:
            ranges.append(resp.status)

    page.on("response", seen)
    await page.set_content(f'<video id="v" muted src="{link}"></video>')
    assert await play(page, "#v") > PLAYED
    duration = await page.evaluate("document.querySelector('#v').duration")
    assert duration == pytest.approx(job.request.duration, abs=0.5)
    await page.evaluate(
        """t => new Promise(done => {
            const v = document.querySelector('#v');
            v.addEventListener('seeked', () => done(), {once: true});
            v.currentTime = t;
        })""",
        duration - 1,
    )
    assert 206 in ranges, ranges
    await shots.take(page, "media-link-player")
    assert OTHER_MODEL and ALICE  # the gallery tests below use them
