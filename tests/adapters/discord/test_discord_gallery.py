"""`/sora-gallery` (and `/sora prompt:gallery`) through the real discord.py client and the fake
Discord: a private answer (ephemeral, no link preview) with a link that opens the gallery of
that guild for that member; Manage Server (the platform's fact) opens the admin pages, and
without PUBLIC_BASE_URL the answer says what is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import ALICE, opt
from tests.gallery.visitor import visiting

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

EPHEMERAL, SUPPRESS_EMBEDS = 64, 4
LINK = re.compile(r"\(<(http[^>]+/gallery/open\?t=[^>]+)>\)")


async def answer_of(world: World, record: InteractionRecord) -> dict[str, object]:
    await world.fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None
    data = record.callback["data"]
    assert isinstance(data, dict)
    return data


async def test_sora_gallery_answers_privately_with_a_working_link(world: World) -> None:
    record = await world.fake.slash(
        "sora-gallery", [], user=ALICE, guild_id=world.guild_id, channel_id=world.channel_id
    )
    data = await answer_of(world, record)
    assert int(str(data["flags"])) & EPHEMERAL and int(str(data["flags"])) & SUPPRESS_EMBEDS
    found = LINK.search(str(data["content"]))
    assert found is not None, data
    async with visiting(world.rc) as browser:
        page = await browser.get(found.group(1))
        assert page.status == 200 and "Your workspace's videos" in page.text
        assert (await browser.get("/gallery/admin")).status == 403  # no Manage Server
        again = await browser.get(found.group(1))  # the browser it signed in: the gallery
        assert again.status == 200 and "Your workspace's videos" in again.text
    async with visiting(world.rc) as stranger:
        assert (await stranger.get(found.group(1))).status == 410  # used once


async def test_manage_server_opens_the_admin_pages_and_the_prompt_word_works(
    world: World,
) -> None:
    record = await world.fake.slash(
        "sora",
        [opt("prompt", "gallery")],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        admin=True,
    )
    data = await answer_of(world, record)
    found = LINK.search(str(data["content"]))
    assert found is not None, data
    async with visiting(world.rc) as browser:
        assert (await browser.get(found.group(1))).status == 200
        assert (await browser.get("/gallery/admin")).status == 200


async def test_without_public_base_url_the_answer_says_so(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim, public_base_url="") as world:
        record = await fake.slash(
            "sora-gallery", [], user=ALICE, guild_id=world.guild_id, channel_id=world.channel_id
        )
        data = await answer_of(world, record)
        assert "The gallery needs PUBLIC_BASE_URL" in str(data["content"])
        assert int(str(data["flags"])) & EPHEMERAL
