"""The gallery list over real HTTP (both engines): newest first, filters by person, model and
prompt text (case-insensitive; `%` and `_` are letters, not wildcards), paging that keeps the
filters; and where a video was posted in chat, from what its surface knows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from bot.domain.models import Job, JobStatus, Requester, Surface, VideoRequest
from bot.gallery import archive
from bot.gallery.present import chat_place, credits_text
from tests.conftest import ALICE, BOB
from tests.gallery.visitor import delivered, visiting
from tests.support import RecordingPort, RunningCore

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

CARD = re.compile(r'<li class="video" id="video-([^"]+)"')


@pytest.fixture
def core_settings(database_url: str) -> dict[str, Any]:
    return {"database_url": database_url}


def shown(html: str) -> list[str]:
    return CARD.findall(html)


async def test_filters_and_paging(
    rc: RunningCore, port: RecordingPort, monkeypatch: pytest.MonkeyPatch
) -> None:
    a1 = await delivered(rc, port, ALICE, "A Red Kite over hills")
    b1 = await delivered(rc, port, BOB, "a paper boat, 100% wet")
    a2 = await delivered(rc, port, ALICE, "a red_kite at dusk")
    newest_first = [a2.id, b1.id, a1.id]
    async with visiting(rc) as alice:
        page = await alice.sign_in(rc, ALICE)
        assert shown(page.text) == newest_first
        assert shown((await alice.get("/gallery/?person=bob")).text) == [b1.id]
        assert shown((await alice.get("/gallery/?q=RED+KITE")).text) == [a1.id]
        assert shown((await alice.get("/gallery/?q=red_")).text) == [a2.id]  # `_` is a letter
        assert shown((await alice.get("/gallery/?q=100%25")).text) == [b1.id]  # so is `%`
        assert shown((await alice.get("/gallery/?q=%25")).text) == [b1.id]
        model = a1.request.model
        assert shown((await alice.get(f"/gallery/?model={model}")).text) == newest_first
        assert shown((await alice.get("/gallery/?model=no-such-model")).text) == []
        assert 'id="no-videos"' in (await alice.get("/gallery/?q=zebra")).text
        monkeypatch.setattr(archive, "PAGE_SIZE", 1)
        first = await alice.get("/gallery/?person=alice")
        assert shown(first.text) == [a2.id] and 'id="page-prev"' not in first.text
        older = re.search(r'id="page-next" rel="next" href="([^"]+)"', first.text)
        assert older is not None
        second = await alice.get(older.group(1).replace("&amp;", "&"))
        assert shown(second.text) == [a1.id]  # the filter was kept
        assert 'id="page-next"' not in second.text and 'id="page-prev"' in second.text
        for junk in ("0", "-3", "x", "99999999"):
            assert (await alice.get(f"/gallery/?page={junk}")).status == 200


def _job(platform: str, workspace: str, surface: Surface) -> Job:
    request = VideoRequest(model="m", prompt="p", duration=4, aspect_ratio="16:9")
    who = Requester(platform=platform, workspace=workspace, user="u")
    return Job(
        id="j1",
        requester=who,
        request=request,
        surface=surface,
        status=JobStatus.DELIVERED,
        created_at=dt.datetime.now(dt.UTC),
    )


def test_the_chat_place_is_what_the_surface_knows() -> None:
    discord = _job(
        "discord",
        "111",
        Surface(channel="222", data={"guild_id": "111", "channel_id": "222", "message_id": "333"}),
    )
    place = chat_place(discord)
    assert place is not None and place.url == "https://discord.com/channels/111/222/333"
    dm_surface = Surface(channel="222", data={"channel_id": "222", "bot_message_id": "4"})
    in_dm = chat_place(_job("discord", "dm", dm_surface))
    assert in_dm is not None and in_dm.url == "https://discord.com/channels/@me/222/4"
    slack = _job("slack", "T0TEAM", Surface(channel="C0CHAN", thread="1700000000.000100"))
    found = chat_place(slack)
    assert found is not None
    assert found.url == "https://slack.com/app_redirect?team=T0TEAM&channel=C0CHAN"
    permalink = "https://team.slack.com/archives/C0CHAN/p1700000000000100"
    linked = Surface(channel="C0CHAN", thread="1700000000.000100", data={"permalink": permalink})
    message = chat_place(_job("slack", "T0TEAM", linked))
    assert message is not None and message.url == permalink
    for odd in ("javascript:alert(1)", "https://evil.example/archives/x", "http://a.slack.com/"):
        surface = Surface(channel="C0CHAN", data={"permalink": odd})
        fallback = chat_place(_job("slack", "T0TEAM", surface))
        assert fallback is not None and fallback.url.startswith("https://slack.com/app_redirect")
    assert chat_place(_job("discord", "111", Surface(data={"channel_id": "222"}))) is None
    assert chat_place(_job("slack", "T0TEAM", Surface(channel="<script>"))) is None
    assert chat_place(_job("test", "W1", Surface(channel="x"))) is None


def test_what_a_job_cost_reads_by_its_status() -> None:
    job = _job("test", "W1", Surface()).model_copy(update={"reserved_uc": 230_400})
    assert credits_text(job) == "23.04 credits"  # delivered, charged its quote
    billed = job.model_copy(update={"charged_uc": 200_000})
    assert credits_text(billed) == "20 credits"
    failed = job.model_copy(update={"status": JobStatus.FAILED})
    assert credits_text(failed) == "nothing (returned)"
    kept = failed.model_copy(update={"charged_uc": 50_000})
    assert credits_text(kept) == "5 credits (the rest returned)"
    running = job.model_copy(update={"status": JobStatus.SUBMITTED})
    assert credits_text(running) == "23.04 credits held"
