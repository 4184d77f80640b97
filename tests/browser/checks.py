"""What the gallery must do in the browser, as checks the tests share: fit the screen (no
sideways scroll), show where the keyboard is (every Tab stop has a visible ring), and play
and seek a video (which needs byte ranges).

Every wait is on the page's own state; nothing sleeps.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page

#: The media element has played this far: playback really advances.
PLAYED = 0.5

#: How a Tab stop shows focus: its own outline, or (a video card clips its link's outline) the
#: card's or scroll region's outline around it. A player's focus is drawn by its own controls.
RING = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const around = el.closest('li.video, .scroll') || el;
    const ring = [el, around].map(e => getComputedStyle(e))
        .some(s => s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2);
    return {what: el.tagName + '#' + (el.id || el.className || el.textContent.trim().slice(0, 20)),
            ring: ring || el.tagName === 'VIDEO'};
}"""


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide on a {width[1]} px screen"


async def every_tab_stop_shows_focus(page: Page, most: int = 80) -> list[str]:
    """Tab from the top through the whole page (until focus leaves it or comes round again):
    each stop must show a ring. The stops, in order."""
    await page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0) }")
    stops: list[str] = []
    for _ in range(most):
        await page.keyboard.press("Tab")
        seen = await page.evaluate(RING)
        if seen is None or (stops and seen["what"] == stops[0]):
            break
        assert seen["ring"], f"no visible focus on {seen['what']} ({page.url})"
        stops.append(seen["what"])
    assert stops, f"nothing on {page.url} takes keyboard focus"
    return stops


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


async def seek_near_the_end(page: Page, selector: str) -> float:
    """Seek to a second before the end and wait for `seeked`: the player must land there,
    which it can only when the server answers byte ranges (else the whole resource is not
    seekable). The duration."""
    duration: float = await page.evaluate("s => document.querySelector(s).duration", selector)
    landed, seekable = await page.evaluate(
        """([s, t]) => new Promise(done => {
            const v = document.querySelector(s);
            v.addEventListener('seeked', () => done(
                [v.currentTime, v.seekable.length ? v.seekable.end(0) : 0]), {once: true});
            v.currentTime = t;
        })""",
        [selector, duration - 1],
    )
    assert seekable == pytest.approx(duration, abs=0.1)
    assert duration - 1.1 <= landed <= duration, (landed, duration)
    return duration
