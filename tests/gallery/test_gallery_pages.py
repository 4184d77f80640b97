"""How the gallery's pages read, over real HTTP: message pages (401, 403, 404, 410, signed out)
keep the page frame — the signed-in name and Sign out when there is a session, else how to
get a new link instead of a Gallery link that would only answer 401; each card labels the
picture's shape by how its model spells it; no page carries inline style or script (the CSP
forbids them)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from bot.domain.models import Job, Requester
from tests.browser.world import other_model
from tests.conftest import ALICE
from tests.gallery.visitor import Answer, delivered, visiting
from tests.support import RecordingPort, RunningCore

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ADMIN = Requester(platform="test", workspace="W1", user="dana", workspace_admin=True)
INLINE = re.compile(r"<script|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)


@pytest.fixture
def core_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url}


def message_of(answer: Answer) -> str:
    found = re.search(r'<p id="message">(.*?)</p>', answer.text, re.DOTALL)
    assert found is not None, answer.text
    return html.unescape(found.group(1))


def signed_out_frame(answer: Answer) -> None:
    """No Gallery link (it would answer 401), no Sign out; the commands that give a link."""
    assert 'id="nav-gallery"' not in answer.text and 'id="logout-button"' not in answer.text
    hint = re.search(r'<p id="get-link"[^>]*>(.*?)</p>', answer.text, re.DOTALL)
    assert hint is not None, answer.text
    assert "/sora gallery" in hint.group(1) and "/sora-gallery" in hint.group(1)


async def test_message_pages_keep_the_frame_or_say_how_to_get_a_link(rc: RunningCore) -> None:
    async with visiting(rc) as stranger:
        nobody = await stranger.get("/gallery/")
        assert nobody.status == 401 and "not signed in" in message_of(nobody)
        signed_out_frame(nobody)
    link = await rc.core.service.gallery_link(ALICE)
    async with visiting(rc) as alice:
        assert (await alice.get(link)).status == 200
        for path, status in (("/gallery/admin", 403), ("/gallery/v/nope", 404)):
            page = await alice.get(path)
            assert page.status == status, path
            assert '<span id="who">alice</span>' in page.text, path
            assert 'id="logout-button"' in page.text and 'id="nav-gallery"' in page.text, path
            assert 'id="get-link"' not in page.text, path
        refused = message_of(await alice.get("/gallery/admin"))
        assert refused.count("admin") == 2 and "Only budget admins can do that" not in refused
        assert refused.count(".") == 1, refused  # one sentence
        out = await alice.post("/gallery/logout", {"csrf": alice.csrf})
        assert out.status == 200 and "signed out" in message_of(out)
        signed_out_frame(out)
    async with visiting(rc) as replay:
        used = await replay.get(link)
        assert used.status == 410
        words = message_of(used)
        assert "already used" in words and "/sora gallery" in words and "/sora-gallery" in words
        signed_out_frame(used)


def card_facts(page: Answer, job: Job) -> dict[str, str]:
    card = page.text.split(f'id="video-{job.id}"', 1)[1].split("</li>", 1)[0]
    pairs = re.findall(r"<dt[^>]*>([^<]*)</dt><dd[^>]*>([^<]*)</dd>", card)
    return {name: html.unescape(value) for name, value in pairs}


async def test_cards_say_length_and_the_shape_as_each_model_spells_it(
    rc: RunningCore, port: RecordingPort
) -> None:
    made = [
        await delivered(rc, port, ALICE, "a kite on the default model"),
        await delivered(rc, port, ALICE, f"a boat --model {other_model()}"),
    ]
    async with visiting(rc) as alice:
        page = await alice.sign_in(rc, ALICE)
        for job in made:
            facts = card_facts(page, job)
            assert facts["Length"] == f"{job.request.duration} s", facts
            ratio = job.request.aspect_ratio
            if re.fullmatch(r"\d+x\d+", ratio):
                assert facts["Size"] == ratio.replace("x", "×"), facts
            elif ":" in ratio:
                assert facts["Ratio"] == ratio, facts
            else:
                assert facts["Frame"] == ratio, facts
            assert ratio not in facts["Length"]
            video = await alice.get(f"/gallery/v/{job.id}")
            details = dict(re.findall(r"<dt>([^<]*)</dt><dd[^>]*>([^<]*)</dd>", video.text))
            assert "Aspect ratio" not in details
            assert {k: v for k, v in details.items() if k in ("Size", "Ratio", "Frame")} == {
                k: v for k, v in facts.items() if k in ("Size", "Ratio", "Frame")
            }


async def test_no_page_has_inline_style_or_script(rc: RunningCore, port: RecordingPort) -> None:
    job = await delivered(rc, port, ALICE, "a page to look at")
    pages: dict[str, Answer] = {}
    async with visiting(rc) as dana:
        pages["signed out"] = await dana.get("/gallery/")
        pages["list"] = await dana.sign_in(rc, ADMIN)
        pages["filtered"] = await dana.get("/gallery/?q=page")
        pages["video"] = await dana.get(f"/gallery/v/{job.id}")
        pages["missing"] = await dana.get("/gallery/v/nope")
        pages["admin"] = await dana.get("/gallery/admin")
    for name, page in pages.items():
        assert INLINE.search(page.text) is None, (name, INLINE.search(page.text))
        assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"], name
