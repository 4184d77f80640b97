"""End to end in a real browser (Debian's chromium, headless, through Playwright): a team orders
videos with `/sora` in (fake) Slack, opens the gallery from the link `/sora gallery` answers
with, plays a video, filters, and an admin decides a pending approval on the dashboard.

One bot for the module (tests/browser/world.py), one browser for the session, a fresh context
(cookies) per test. Every wait is on an event or a condition in the page (wait_for_function,
expect), never a fixed sleep. Screenshots go to the folder printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, Response, expect

from bot.domain.models import Job, JobStatus, Requester
from tests.adapters.slack.fake_slack import TEAM_ID
from tests.browser.checks import (
    PLAYED,
    every_tab_stop_shows_focus,
    no_sideways_scroll,
    play,
    seek_near_the_end,
)
from tests.browser.conftest import Contexts, Guard, Shots
from tests.browser.world import ADMIN, ALICE, BOB, OTHER_MODEL, GalleryWorld, gallery_world

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(
    tmp_path_factory: pytest.TempPathFactory, chromium_executable: str
) -> AsyncIterator[GalleryWorld]:
    async with gallery_world(tmp_path_factory.mktemp("gallery-bot")) as made:
        yield made


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def videos(world: GalleryWorld) -> dict[str, Job]:
    """The team's archive: Alice's two videos (two models), Bob's one, ordered in chat."""
    return {
        "kite": await world.order("a red kite over the dunes", ALICE),
        "boat": await world.order(f"a paper boat on a rainy street --model {OTHER_MODEL}", ALICE),
        "fox": await world.order("a fox asleep in the snow", BOB),
    }


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
        if "/media/" in resp.url and resp.status == 206:
            ranges.append(resp.status)

    page.on("response", seen)
    await page.set_content(f'<video id="v" muted src="{link}"></video>')
    assert await play(page, "#v") > PLAYED
    assert await seek_near_the_end(page, "#v") == pytest.approx(job.request.duration, abs=0.5)
    assert ranges, "no byte range (206) was asked for and answered"
    await shots.take(page, "media-link-player")


# -- the gallery, opened from chat ------------------------------------------------------------


async def open_gallery(world: GalleryWorld, page: Page, user: str) -> str:
    """`/sora gallery` in Slack, then its link in `page`: the gallery list. The link."""
    link = await world.gallery_link(user)
    assert link.startswith(f"{world.base_url}/gallery/open?t="), link
    await page.goto(link)
    await expect(page).to_have_url(f"{world.base_url}/gallery/")
    return link


async def listed(page: Page) -> list[str]:
    """The job ids the gallery list shows, top to bottom."""
    await expect(page.locator("#videos, #no-videos")).to_have_count(1)
    ids: list[str] = await page.locator("#videos li.video").evaluate_all(
        "items => items.map(li => li.id.replace(/^video-/, ''))"
    )
    return ids


async def delivered(world: GalleryWorld) -> list[Job]:
    """The workspace's delivered videos, as the service knows them."""
    service = world.slack.rc.core.service
    jobs = [await service.get_job(r["id"]) for r in await world.slack.job_rows()]
    return [j for j in jobs if j.status == JobStatus.DELIVERED]


async def test_the_gallery_from_chat_lists_the_videos_and_plays_one(
    world: GalleryWorld,
    videos: dict[str, Job],
    contexts: Contexts,
    page: Page,
    guard: Guard,
    shots: Shots,
) -> None:
    link = await open_gallery(world, page, ALICE)
    kite, boat, fox = videos["kite"], videos["boat"], videos["fox"]
    # The whole workspace's delivered videos, newest first (Bob's too).
    shown = await listed(page)
    assert [i for i in shown if i in (kite.id, boat.id, fox.id)] == [fox.id, boat.id, kite.id]
    assert set(shown) == {j.id for j in await delivered(world)}
    # Each card: a poster (a real frame, with alt text naming the prompt), prompt, model, who.
    card = page.locator(f"#video-{kite.id}")
    poster = card.locator("img.poster")
    await expect(poster).to_have_attribute("alt", re.compile(re.escape(kite.request.prompt)))
    await poster.scroll_into_view_if_needed()
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await poster.element_handle()
    )
    frame = await page.context.request.get(f"{world.base_url}/gallery/v/{kite.id}/poster")
    assert frame.headers["content-type"] == "image/jpeg"
    await expect(card.locator(".model")).to_have_text(kite.request.model)
    await expect(page.locator(f"#video-{boat.id} .model")).to_have_text(OTHER_MODEL)
    await shots.take(page, "gallery-list")

    await card.locator("a.video-link").click()
    await expect(page).to_have_url(f"{world.base_url}/gallery/v/{kite.id}")
    await expect(page.locator("#prompt")).to_have_text(kite.request.prompt)
    # "Open the Slack message": the permalink the Slack port asked for at delivery.
    await expect(page.locator("#chat-link")).to_have_attribute(
        "href", kite.surface.data["permalink"]
    )
    assert await play(page, "#player") > PLAYED
    await shots.take(page, "video-page-playing")
    assert await seek_near_the_end(page, "#player") == pytest.approx(kite.request.duration, abs=0.5)

    # The link opened once: opened again (another browser), it is a page in words, not a 500.
    again = await (await contexts.new()).new_page()
    guard.expected.append("status of 410")
    answer = await again.goto(link)
    assert answer is not None and answer.status == 410
    await expect(again.locator("#message")).to_contain_text("already used")
    await expect(again.locator("#videos")).to_have_count(0)
    await shots.take(again, "link-used-twice")


async def test_filters_narrow_the_list(
    world: GalleryWorld, videos: dict[str, Job], page: Page, shots: Shots
) -> None:
    await open_gallery(world, page, ALICE)
    everything = await delivered(world)
    assert set(await listed(page)) == {j.id for j in everything}

    await page.select_option("#filter-person", BOB)
    await page.click("#filter-apply")
    await expect(page).to_have_url(re.compile(r"person="))
    bobs = {j.id for j in everything if j.requester.user == BOB}
    assert set(await listed(page)) == bobs and videos["fox"].id in bobs
    apply, clear = page.locator("#filter-apply"), page.locator("#filter-clear")
    boxes = [await apply.bounding_box(), await clear.bounding_box()]
    assert boxes[0] and boxes[1]
    assert abs(boxes[0]["y"] - boxes[1]["y"]) <= 1, boxes  # side by side, one height
    assert abs(boxes[0]["height"] - boxes[1]["height"]) <= 1, boxes
    await shots.take(page, "filtered-by-person")

    await page.click("#filter-clear")
    await page.select_option("#filter-model", OTHER_MODEL)
    await page.click("#filter-apply")
    await expect(page).to_have_url(re.compile(r"model="))
    assert await listed(page) == [videos["boat"].id]

    await page.click("#filter-clear")
    await page.fill("#filter-text", "KITE over")
    await page.press("#filter-text", "Enter")
    await expect(page).to_have_url(re.compile(r"q="))
    assert await listed(page) == [videos["kite"].id]
    await shots.take(page, "filtered-by-prompt")

    await page.fill("#filter-text", "no such prompt anywhere")
    await page.press("#filter-text", "Enter")
    assert await listed(page) == []
    await expect(page.locator("#no-videos")).to_contain_text("No video matches")

    await page.click("#filter-clear")
    assert set(await listed(page)) == {j.id for j in everything}


async def test_keyboard_reaches_the_first_video_and_opens_it(
    world: GalleryWorld, videos: dict[str, Job], page: Page, shots: Shots
) -> None:
    await open_gallery(world, page, ALICE)
    first = (await listed(page))[0]
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.matches('a.video-link')"):
            break
    else:
        raise AssertionError("Tab never reached a video link")
    focused = await page.evaluate("document.activeElement.getAttribute('href')")
    assert focused == f"/gallery/v/{first}"
    # The card clips its link's own outline: the ring is the card's, drawn whole around it.
    ring = await page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement.closest('li.video'));
                   return [s.outlineStyle, parseFloat(s.outlineWidth)] }"""
    )
    assert ring[0] == "solid" and ring[1] >= 2, ring
    await shots.take(page, "keyboard-focus-on-first-video", full_page=False)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{world.base_url}/gallery/v/{first}")
    await expect(page.locator("#player")).to_be_visible()
    stops = await every_tab_stop_shows_focus(page)
    assert "A#download" in stops and "A#back" in stops
    await page.goto(f"{world.base_url}/gallery/")
    assert "BUTTON#logout-button" in await every_tab_stop_shows_focus(page)


async def test_a_phone_sized_screen(
    world: GalleryWorld, videos: dict[str, Job], contexts: Contexts, guard: Guard, shots: Shots
) -> None:
    phone = await contexts.new(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        color_scheme="dark",  # phones often are: the stylesheet has a dark palette
    )
    page = await phone.new_page()
    await open_gallery(world, page, ADMIN)
    await no_sideways_scroll(page)
    await shots.take(page, "phone-gallery")
    await page.locator(f"#video-{videos['boat'].id} a.video-link").click()
    await expect(page.locator("#player")).to_be_visible()
    await no_sideways_scroll(page)
    await shots.take(page, "phone-video-page")
    await page.click("#nav-admin")
    await expect(page.locator("#usage")).to_be_visible()
    await no_sideways_scroll(page)
    # The table is wider than the phone: it scrolls sideways in its own region, which says so
    # and which the keyboard can scroll.
    region = page.locator("#usage-scroll")
    await expect(page.locator("#usage-hint")).to_be_visible()
    await expect(region).to_have_attribute("role", "region")
    assert await region.evaluate("r => r.scrollWidth > r.clientWidth")
    await region.focus()
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function("r => r.scrollLeft > 0", arg=await region.element_handle())
    # The chart: its own size reserved before it loads, and a link to it full size.
    chart = page.locator("#chart")
    await chart.scroll_into_view_if_needed()
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await chart.element_handle()
    )
    sizes = await chart.evaluate(
        "i => [i.naturalWidth, i.naturalHeight, +i.getAttribute('width'),"
        " +i.getAttribute('height')]"
    )
    assert sizes[:2] == sizes[2:], sizes
    await expect(page.locator("#chart-link")).to_have_attribute("href", "/gallery/admin/chart.png")
    await shots.take(page, "phone-admin")
    # The narrowest phones (320 px): every page still fits.
    await page.set_viewport_size({"width": 320, "height": 640})
    for path in ("/gallery/", f"/gallery/v/{videos['kite'].id}", "/gallery/admin", "/gallery/v/x"):
        if path == "/gallery/v/x":
            guard.expected.append("status of 404")
        await page.goto(world.base_url + path)
        await no_sideways_scroll(page)
    await shots.take(page, "narrow-320-not-found")


# -- the admin dashboard ---------------------------------------------------------------------


async def test_non_admins_see_no_admin_pages(
    world: GalleryWorld, videos: dict[str, Job], page: Page, guard: Guard, shots: Shots
) -> None:
    await open_gallery(world, page, BOB)
    await expect(page.locator("#nav-gallery")).to_be_visible()
    await expect(page.locator("#nav-admin")).to_have_count(0)
    guard.expected.append("status of 403")
    answer = await page.goto(f"{world.base_url}/gallery/admin")
    assert answer is not None and answer.status == 403
    await expect(page.locator("#message")).to_contain_text("budget admins can see the admin pages")
    await expect(page.locator("#usage, #approvals, #limits")).to_have_count(0)
    # Still signed in: the refusal keeps the name and Sign out in its header.
    await expect(page.locator("#who")).to_be_visible()
    await expect(page.locator("#logout-button")).to_be_visible()
    assert "BUTTON#logout-button" in await every_tab_stop_shows_focus(page)
    await shots.take(page, "admin-refused-for-a-non-admin")


async def test_an_admin_approves_on_the_dashboard(
    world: GalleryWorld, videos: dict[str, Job], context: BrowserContext, page: Page, shots: Shots
) -> None:
    service = world.slack.rc.core.service
    alice = Requester(platform="slack", workspace=TEAM_ID, user=ALICE)
    granted = (await service.balance(alice)).granted
    approval = await world.ask_an_admin("a cat on a skateboard", ALICE)

    await open_gallery(world, page, ADMIN)
    await page.click("#nav-admin")
    await expect(page).to_have_url(f"{world.base_url}/gallery/admin")
    item = page.locator(f"#approval-{approval.id}")
    await expect(item).to_contain_text("a cat on a skateboard")
    await expect(page.locator(f"#usage-{ALICE}")).to_be_visible()
    chart = page.locator("#chart")
    await expect(chart).to_have_attribute("alt", re.compile(r"\w"))
    await chart.scroll_into_view_if_needed()
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=await chart.element_handle()
    )
    stops = await every_tab_stop_shows_focus(page)
    assert {"DIV#usage-scroll", "A#chart-link", f"BUTTON#approve-{approval.id}"} <= set(stops)
    await shots.take(page, "admin-dashboard")
    # A second tab (same admin) still shows the buttons when the first has decided.
    stale = await context.new_page()
    await stale.goto(f"{world.base_url}/gallery/admin")
    await expect(stale.locator(f"#approve-{approval.id}")).to_be_visible()

    await page.click(f"#approve-{approval.id}")
    await expect(page.locator("#flash")).to_contain_text("Approved")
    await expect(item).to_have_count(0)
    decided = await service.get_approval(approval.id)
    assert decided.status == "approved" and decided.decided_by == f"slack:{ADMIN}"
    assert (await service.balance(alice)).granted == granted + approval.price
    await shots.take(page, "admin-after-approve")

    await stale.click(f"#approve-{approval.id}")
    await expect(stale.locator("#flash")).to_contain_text("already approved")
    await shots.take(stale, "admin-second-click")
    assert (await service.get_approval(approval.id)).status == "approved"
    assert (await service.balance(alice)).granted == granted + approval.price
    audit = [r for r in await service.audit_log() if r["action"] == "approve"]
    assert len(audit) == 1
    # The approved video is made, as from the chat buttons.
    assert decided.job_id is not None
    made = await world.slack.wait_job(lambda j: j.status.terminal, decided.job_id)
    assert made.status == JobStatus.DELIVERED and made.requester.user == ALICE


async def test_an_expired_video_shows_as_expired_not_as_a_broken_player(
    world: GalleryWorld, videos: dict[str, Job], page: Page, shots: Shots
) -> None:
    old = await world.order("a sunset kept past its retention", ADMIN)
    assert old.media_path is not None
    # Gone, as the retention sweep leaves it after MEDIA_RETENTION_DAYS.
    await asyncio.to_thread(Path(old.media_path).unlink)
    await open_gallery(world, page, ADMIN)
    card = page.locator(f"#video-{old.id}")
    await expect(card.locator(".expired")).to_have_text("Expired")
    await expect(page.locator(f"#video-{videos['kite'].id} .expired")).to_have_count(0)
    await card.locator("a.video-link").click()
    await expect(page.locator("#expired")).to_contain_text("expired")
    await expect(page.locator("video")).to_have_count(0)
    await expect(page.locator("#prompt")).to_have_text(old.request.prompt)
    await shots.take(page, "expired-video-page")


async def test_signing_out_ends_the_session(
    world: GalleryWorld, videos: dict[str, Job], page: Page, guard: Guard, shots: Shots
) -> None:
    await open_gallery(world, page, BOB)
    fox = videos["fox"]
    await page.click("#logout-button")
    await expect(page.locator("#message")).to_contain_text("signed out")
    await expect(page.locator("#logout-button")).to_have_count(0)
    # No "Gallery" link that would only answer 401: how to get a new link instead.
    await expect(page.locator("#nav-gallery")).to_have_count(0)
    await expect(page.locator("#get-link")).to_contain_text("/sora gallery")
    guard.expected.append("status of 401")
    answer = await page.goto(f"{world.base_url}/gallery/v/{fox.id}")
    assert answer is not None and answer.status == 401
    await expect(page.locator("#message")).to_contain_text("not signed in")
    await expect(page.locator("#player")).to_have_count(0)
    await shots.take(page, "after-sign-out")
    assert (
        await page.context.request.get(f"{world.base_url}/gallery/v/{fox.id}/file")
    ).status == 401
