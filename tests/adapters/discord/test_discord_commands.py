"""/sora autocomplete, /sora-credits, /sora-jobs, /sora-admin and DMs, through the real client."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    INTEGER,
    USER,
    is_upload,
    opt,
    sora_options,
)


async def answered(world: World, record: InteractionRecord) -> dict[str, Any]:
    await world.fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None
    return record.callback


async def followup(world: World, record: InteractionRecord) -> dict[str, Any]:
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    assert isinstance(req.json, dict)
    return req.json


async def test_autocomplete_narrows_durations_and_ratios_to_the_chosen_model(world: World) -> None:
    fake = world.fake
    base = [opt("prompt", "a boat"), opt("model", "sora-2-preview")]
    record = await fake.slash(
        "sora",
        [*base, {**opt("duration", "", INTEGER), "focused": True}],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        autocomplete=True,
    )
    callback = await answered(world, record)
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == [4, 8, 12]
    assert callback["data"]["choices"][0]["name"] == "4 s · 23.04 credits"

    record = await fake.slash(
        "sora",
        [*base, {**opt("aspect_ratio", ""), "focused": True}],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        autocomplete=True,
    )
    assert [c["value"] for c in (await answered(world, record))["data"]["choices"]] == [
        "1280x720",
        "720x1280",
    ]

    record = await fake.slash(
        "sora",
        [opt("prompt", "a boat"), {**opt("model", "veo"), "focused": True}],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        autocomplete=True,
    )
    models = [c["value"] for c in (await answered(world, record))["data"]["choices"]]
    assert models == [n for n in world.rc.core.service.orderable_models() if "veo" in n]
    assert models

    record = await fake.slash(
        "sora",
        [opt("prompt", "a boat"), {**opt("model", "seedance"), "focused": True}],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        autocomplete=True,
    )
    models = [c["value"] for c in (await answered(world, record))["data"]["choices"]]
    assert models and all(m.startswith("seedance") for m in models)

    quality_model = next(s for s in world.rc.core.catalog.models if s.qualities)
    record = await fake.slash(
        "sora",
        [
            opt("prompt", "a boat"),
            opt("model", quality_model.name),
            {**opt("quality", ""), "focused": True},
        ],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        autocomplete=True,
    )
    choices = (await answered(world, record))["data"]["choices"]
    assert [c["value"] for c in choices] == list(quality_model.qualities)


async def test_credits_show_allowance_used_held_left_and_reset(world: World) -> None:
    fake = world.fake
    await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(is_upload, within=15)
    record = await fake.slash(
        "sora-credits", [], user=ALICE, guild_id=world.guild_id, channel_id=world.channel_id
    )
    body = await followup(world, record)
    fields = {f["name"]: f["value"] for f in body["embeds"][0]["fields"]}
    balance = await world.rc.core.service.balance(
        Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
    )
    assert fields["Allowance"] == "300"
    assert Decimal(fields["Used"]) == balance.used > 0
    assert Decimal(fields["Left"]) == balance.available
    assert "<t:" in fields["Resets"]
    assert record.callback == {"type": 5, "data": {"flags": 64}}

    record = await fake.slash(
        "sora-jobs", [], user=ALICE, guild_id=world.guild_id, channel_id=world.channel_id
    )
    description = (await followup(world, record))["embeds"][0]["description"]
    assert "**delivered**" in description and "/media/" in description


async def test_admin_commands_are_checked_in_code(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim, admin_user_ids=f"discord:{BOB['id']}") as world:
        service = world.rc.core.service
        alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])

        def set_limit(amount: str) -> list[dict[str, Any]]:
            return [
                {
                    "name": "set-limit",
                    "type": 1,
                    "options": [opt("user", ALICE["id"], USER), opt("amount", amount)],
                }
            ]

        # Alice has no Manage Server and is not in ADMIN_USER_IDS: refused, nothing changes.
        record = await fake.slash(
            "sora-admin",
            set_limit("1000"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        assert "Only budget admins" in (await followup(world, record))["content"]
        assert (await service.balance(alice)).limit == 300

        # Bob is in ADMIN_USER_IDS.
        record = await fake.slash(
            "sora-admin",
            set_limit("12.5"),
            user=BOB,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await followup(world, record)
        assert (await service.balance(alice)).limit == Decimal("12.5")

        # Someone with Manage Server (Discord's permission, checked in code).
        manager = FakeDiscord.user("400000000000000009", "manager")
        record = await fake.slash(
            "sora-admin",
            [
                {
                    "name": "grant",
                    "type": 1,
                    "options": [
                        opt("user", ALICE["id"], USER),
                        opt("amount", "5"),
                        opt("reason", "demo"),
                    ],
                }
            ],
            user=manager,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
            admin=True,
        )
        await followup(world, record)
        assert (await service.balance(alice)).granted == 5

        record = await fake.slash(
            "sora-admin",
            [{"name": "usage", "type": 1, "options": []}],
            user=manager,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
            admin=True,
        )
        table = (await followup(world, record))["content"]
        assert ALICE["id"] in table and "17.5" in table  # allowance: limit 12.5 + grant 5


async def test_a_dm_uses_the_personal_allowance(world: World) -> None:
    fake = world.fake
    dm_channel = fake.new_id()
    # DMs reach global commands only; the test guild has them copied, so register globally too.
    fake.global_commands = [dict(c) for c in fake.guild_commands[world.guild_id]]
    await fake.slash(
        "sora", sora_options("a paper boat"), user=ALICE, guild_id=None, channel_id=dm_channel
    )
    await fake.wait_for(is_upload, within=15)
    dm = Requester(platform="discord", workspace="dm", user=ALICE["id"])
    jobs = await world.rc.core.service.recent_jobs(dm)
    assert len(jobs) == 1 and jobs[0].surface.channel == dm_channel


async def test_without_guild_ids_the_commands_are_synced_globally(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim, discord_guild_ids=""):
        assert {c["name"] for c in fake.global_commands} == {
            "sora",
            "sora-credits",
            "sora-jobs",
            "sora-gallery",
            "sora-admin",
        }
        assert fake.guild_commands == {}
