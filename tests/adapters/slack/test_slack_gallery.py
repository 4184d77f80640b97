"""`/sora gallery` through bolt and the fake Slack: a private (ephemeral) answer without link
unfurling, whose link opens that workspace's gallery for that person; Slack's own admin fact
(users.info is_admin) opens the admin pages; `gallery of …` is a prompt, not the command; and
without PUBLIC_BASE_URL the answer says what is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
