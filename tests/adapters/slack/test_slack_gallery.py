"""`/sora gallery` through bolt and the fake Slack: a private (ephemeral) answer without link
unfurling, whose link opens that workspace's gallery for that person; Slack's own admin fact
(users.info is_admin) opens the admin pages; `gallery of …` is a prompt, not the command; and
without PUBLIC_BASE_URL the answer says what is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.models import Job, JobStatus
from bot.infra.simulator import Simulator
from tests.adapters.slack.actions import response
from tests.adapters.slack.conftest import ALICE, BOB, SlackWorld, slack_bot_on
from tests.adapters.slack.fake_slack import FakeSlack
from tests.gallery.visitor import visiting

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

LINK = re.compile(r"<(http[^|>]+/gallery/open\?t=[^|>]+)\|")


async def gallery_answer(world: SlackWorld, user: str) -> dict[str, object]:
    status, _ = await world.command("gallery", user=user)
    assert status == 200
    return await response(world, f"cmd-{user}")


async def test_sora_gallery_answers_privately_with_a_link_that_opens_once(
    world: SlackWorld,
) -> None:
    answer = await gallery_answer(world, ALICE)
    assert answer["response_type"] == "ephemeral" and answer["unfurl_links"] is False
    found = LINK.search(str(answer["text"]))
    assert found is not None, answer
    async with visiting(world.rc) as browser:
        page = await browser.get(found.group(1))
        assert page.status == 200 and "Your workspace's videos" in page.text
        assert (await browser.get("/gallery/admin")).status == 403
    async with visiting(world.rc) as replay:
        assert (await replay.get(found.group(1))).status == 410


async def test_a_slack_workspace_admin_gets_the_admin_pages(world: SlackWorld) -> None:
    world.fake.workspace_admins.add(BOB)
    answer = await gallery_answer(world, BOB)
    found = LINK.search(str(answer["text"]))
    assert found is not None, answer
    async with visiting(world.rc) as browser:
        assert (await browser.get(found.group(1))).status == 200
        dash = await browser.get("/gallery/admin")
        assert dash.status == 200 and 'id="usage-section"' in dash.text


async def test_gallery_followed_by_words_is_a_prompt(world: SlackWorld) -> None:
    status, body = await world.command("gallery of old maps at dusk")
    assert status == 200 and "On it" in body


async def test_without_public_base_url_the_answer_says_so(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, public_base_url="") as world:
        answer = await gallery_answer(world, ALICE)
        assert "The gallery needs PUBLIC_BASE_URL" in str(answer["text"])
        assert answer["response_type"] == "ephemeral"


async def delivered_in_slack(world: SlackWorld, prompt: str) -> Job:
    status, _ = await world.command(prompt, user=ALICE)
    assert status == 200
    job = await world.wait_job(lambda j: j.status.terminal)
    assert job.status == JobStatus.DELIVERED, job
    return job


async def video_page(world: SlackWorld, job: Job) -> str:
    found = LINK.search(str((await gallery_answer(world, ALICE))["text"]))
    assert found is not None
    async with visiting(world.rc) as browser:
        assert (await browser.get(found.group(1))).status == 200
        return (await browser.get(f"/gallery/v/{job.id}")).text


async def test_the_gallery_links_a_video_to_its_slack_message(world: SlackWorld) -> None:
    job = await delivered_in_slack(world, "a heron in the reeds")
    asked = world.fake.ok_calls_to("chat.getPermalink")
    where = (job.surface.channel, job.surface.thread)
    assert [(c.args["channel"], c.args["message_ts"]) for c in asked] == [where]
    link = job.surface.data["permalink"]
    assert link == f"https://test.slack.com/archives/{where[0]}/p{str(where[1]).replace('.', '')}"
    page = await video_page(world, job)
    assert f'href="{link}"' in page and "Open the Slack message" in page


async def test_without_a_permalink_it_links_to_the_channel(
    world: SlackWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = {"ok": False, "error": "message_not_found"}
    monkeypatch.setattr(world.fake, "_m_chat_getPermalink", lambda args: refused)
    job = await delivered_in_slack(world, "a heron at dusk")
    assert world.fake.calls_to("chat.getPermalink") and "permalink" not in job.surface.data
    assert world.fake.ok_calls_to("files.completeUploadExternal")  # delivered all the same
    page = await video_page(world, job)
    assert "slack.com/app_redirect?team=" in page and "Open the Slack message" not in page
