"""`/sora prompt:help | credits | jobs | cancel <id>`: the one chat parser decides, as on Slack
and the console; each answers as `/sora-credits`, `/sora-jobs` or the Cancel button would,
and none orders a video, holds credits or calls EvoLink."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World
from tests.adapters.discord.fake_discord import InteractionRecord
from tests.adapters.discord.helpers import ALICE, sora_options


async def answer_of(world: World, record: InteractionRecord) -> dict[str, Any]:
    """The ephemeral answer: the callback's message, or the followup after a deferral."""
    await world.fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None
    if record.callback["type"] == 4:
        data: dict[str, Any] = record.callback["data"]
        return data
    assert record.callback == {"type": 5, "data": {"flags": 64}}  # ephemeral "thinking"
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    assert isinstance(req.json, dict)
    return req.json


def words(message: dict[str, Any]) -> str:
    embeds = message.get("embeds") or []
    parts = [str(message.get("content") or "")]
    for embed in embeds:
        parts.append(str(embed.get("title", "")) + str(embed.get("description", "")))
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return " ".join(parts)


@pytest.mark.parametrize(
    ("prompt", "expect"),
    [
        ("help", "/sora-credits"),
        ("/sora help", "/sora-credits"),
        ("credits", "Allowance"),
        ("jobs", ""),
        ("cancel", "Which job?"),
        ("cancel jnope", "There is no job"),
        ("admin", "/sora-admin"),
    ],
)
async def test_chat_sub_commands_in_the_prompt_order_nothing(
    world: World, sim: Simulator, prompt: str, expect: str
) -> None:
    record = await world.fake.slash(
        "sora",
        sora_options(prompt),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    message = await answer_of(world, record)
    assert expect in words(message)
    assert message.get("flags") == 64 or record.callback == {"type": 5, "data": {"flags": 64}}
    assert await world.rc.core.store.fetchall("SELECT id FROM jobs") == []
    assert [r for r in sim.requests if r.kind == "submit"] == []
    alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
    assert (await world.rc.core.service.balance(alice)).held == 0
