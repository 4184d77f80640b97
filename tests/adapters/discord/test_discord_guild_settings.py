"""Per-guild settings through the real client: `/sora-admin settings`, and the bot joining and
leaving servers.

Two servers, HOME (the fixture's first guild) and OTHER, each with its own settings; MANAGER
has Manage Server wherever the fake says `admin=True`, Alice never. Every check is on effects:
what the EvoLink simulator received, what the ledger says, what Discord received. The orders
under each server's settings and the leaving run on both engines (`database_url`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import JobStatus, Requester
from bot.domain.workspace_settings import SETTING_KEYS
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on, first_guild
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.guild_events import join, leave
from tests.adapters.discord.helpers import (
    ALICE,
    INTEGER,
    MANAGER,
    eventually,
    opt,
    sora_options,
)
from tests.adapters.discord.test_discord_buttons import running_job
from tests.prices import DEFAULT_MODEL, UNIT, price_of

OPS = "cli:ops"  # an operator: reads any workspace's settings in the assertions


def typed(amount: Decimal) -> str:
    """Credits as an admin types them (and the bot shows them): 30, not 30.000."""
    return format(amount.normalize(), "f")


@asynccontextmanager
async def two_servers(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, **settings: Any
) -> AsyncIterator[tuple[World, str, str]]:
    """The world (HOME is `world.guild_id`), OTHER's id and OTHER's channel."""
    home, _ = first_guild(fake)
    other, other_channel = fake.add_guild(name="elsewhere")
    async with bot_on(fake, tmp_path, sim, discord_guild_ids=f"{home},{other}", **settings) as w:
        yield w, other, other_channel


async def reply(world: World, record: InteractionRecord) -> str:
    """The text of the (ephemeral) follow-up the bot sent for `record`."""
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    assert isinstance(req.json, dict)
    return str(req.json.get("content") or "")


async def settings_command(
    world: World,
    guild_id: str,
    channel_id: str,
    *options: dict[str, Any],
    user: dict[str, Any] = MANAGER,
) -> str:
    sent = await world.fake.slash(
        "sora-admin",
        [{"name": "settings", "type": 1, "options": list(options)}],
        user=user,
        guild_id=guild_id,
        channel_id=channel_id,
        admin=user is MANAGER,
    )
    return await reply(world, sent)


def another_model(world: World) -> str:
    """An orderable model other than the default that makes a video from text alone."""
    catalog = world.rc.core.catalog
    for name in world.rc.core.service.orderable_models():
        spec = catalog.get(name)
        if name != DEFAULT_MODEL and not spec.image_required:
            return name
    raise AssertionError("the catalog offers one text-to-video model only")


def alice(guild_id: str) -> Requester:
    return Requester(platform="discord", workspace=guild_id, user=ALICE["id"])


async def test_each_server_orders_with_its_own_allowance_and_default_model(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, database_url: str
) -> None:
    servers = two_servers(fake, tmp_path, sim, database_url=database_url)
    async with servers as (world, other, other_channel):
        service = world.rc.core.service
        model = another_model(world)
        home_allowance, other_allowance = UNIT * 3, price_of("a cat", model) * 2

        # Manage Server in each server sets that server's settings there.
        answer = await settings_command(
            world,
            world.guild_id,
            world.channel_id,
            opt("key", "user_credits_per_period"),
            opt("value", typed(home_allowance)),
        )
        assert "Changed" in answer and "Allowance per person" in answer
        for key, value in (
            ("default_model", model),
            ("user_credits_per_period", typed(other_allowance)),
        ):
            answer = await settings_command(
                world, other, other_channel, opt("key", key), opt("value", value)
            )
            assert "Changed" in answer and f"`{value}`" in answer

        # No options: the server's settings, its own marked apart from the defaults.
        shown = await settings_command(world, other, other_channel)
        assert f"**Default model**: `{model}`\n" in shown + "\n"
        assert "**Budget period**: `" in shown and "(default)" in shown
        home_shown = await settings_command(world, world.guild_id, world.channel_id)
        assert f"**Default model**: `{DEFAULT_MODEL}` (default)" in home_shown

        # Without a model chosen, the duration suggestions are those of the server's default.
        for guild_id, channel_id, name in (
            (world.guild_id, world.channel_id, DEFAULT_MODEL),
            (other, other_channel, model),
        ):
            record = await fake.slash(
                "sora",
                [opt("prompt", "a boat"), {**opt("duration", "", INTEGER), "focused": True}],
                user=ALICE,
                guild_id=guild_id,
                channel_id=channel_id,
                autocomplete=True,
            )
            callback = f"{record.token}/callback"
            await fake.wait_for(lambda r, callback=callback: r.path.endswith(callback))
            assert record.callback is not None
            suggested = [c["value"] for c in record.callback["data"]["choices"]]
            assert suggested == list(world.rc.core.catalog.get(name).durations)[:25]

        # `/sora prompt:help` there names the server's default model as the default.
        help_record = await fake.slash(
            "sora", sora_options("help"), user=ALICE, guild_id=other, channel_id=other_channel
        )
        await fake.wait_for(lambda r: r.path.endswith(f"{help_record.token}/callback"))
        assert help_record.callback is not None
        assert f"{model} (default)" in help_record.callback["data"]["content"]

        # A /sora in each server: that server's model at EvoLink, its allowance in the ledger.
        for guild_id, channel_id in ((world.guild_id, world.channel_id), (other, other_channel)):
            await fake.slash(
                "sora",
                sora_options("a paper boat"),
                user=ALICE,
                guild_id=guild_id,
                channel_id=channel_id,
            )

        def submits() -> list[Any]:
            return [r for r in sim.requests if r.kind == "submit"]

        async def both_submitted() -> bool:
            return len(submits()) == 2

        await eventually(both_submitted)
        models = sorted(str(r.json["model"]) for r in submits())
        assert models == sorted([DEFAULT_MODEL, model])

        home_balance, other_balance = (
            await service.balance(alice(world.guild_id)),
            await service.balance(alice(other)),
        )
        assert home_balance.limit == home_allowance
        assert other_balance.limit == other_allowance
        [home_job] = await service.recent_jobs(alice(world.guild_id))
        [other_job] = await service.recent_jobs(alice(other))
        assert (home_job.request.model, other_job.request.model) == (DEFAULT_MODEL, model)
        assert home_job.reserved == UNIT and other_job.reserved == price_of("a cat", model)
        assert home_balance.used + home_balance.held == UNIT
        assert other_balance.used + other_balance.held == price_of("a cat", model)


async def test_a_plain_member_is_refused_and_a_bad_value_changes_nothing(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim) as world:
        service = world.rc.core.service
        before = await service.workspace_settings(OPS, "discord", world.guild_id)

        # Alice has no Manage Server: refused, in the core's words, for reading and changing.
        for options in ((), (opt("key", "max_jobs_per_user"), opt("value", "5"))):
            refused = await settings_command(
                world, world.guild_id, world.channel_id, *options, user=ALICE
            )
            assert "Only budget admins" in refused

        # A manager's bad value: the key and what it accepts are named; nothing is written.
        bad = await settings_command(
            world,
            world.guild_id,
            world.channel_id,
            opt("key", "budget_period"),
            opt("value", "fortnight"),
        )
        assert "budget_period" in bad and "week" in bad and "month" in bad
        half = await settings_command(world, world.guild_id, world.channel_id, opt("value", "5"))
        assert "Which setting?" in half
        one = await settings_command(
            world, world.guild_id, world.channel_id, opt("key", "max_jobs_per_user")
        )
        assert "**Videos at once per person**: `" in one and "MAX_JOBS_PER_USER" in one

        after = await service.workspace_settings(OPS, "discord", world.guild_id)
        assert after == before and after.overridden == frozenset()
        assert not [a for a in await service.audit_log() if a["action"] == "set-setting"]

        # The manager's good change: one audit row, and `default` puts it back.
        await settings_command(
            world,
            world.guild_id,
            world.channel_id,
            opt("key", "max_jobs_per_user"),
            opt("value", "5"),
        )
        changed = await service.workspace_settings(OPS, "discord", world.guild_id)
        assert changed.max_jobs_per_user == 5 and changed.overridden == {"max_jobs_per_user"}
        back = await settings_command(
            world,
            world.guild_id,
            world.channel_id,
            opt("key", "max_jobs_per_user"),
            opt("value", "default"),
        )
        assert "(default)" in back
        reset = await service.workspace_settings(OPS, "discord", world.guild_id)
        assert reset == before
        rows = [a for a in await service.audit_log() if a["action"] == "set-setting"]
        assert len(rows) == 2


async def test_joining_a_server_syncs_the_commands_there(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim) as world:
        guild_id, channel_id = await join(fake, "newcomer")
        await fake.wait_for(
            lambda r: (
                r.method == "PUT"
                and r.path == f"/applications/{fake.application_id}/guilds/{guild_id}/commands"
            )
        )
        commands = {c["name"]: c for c in fake.guild_commands[guild_id]}
        assert {"sora", "sora-admin"} <= set(commands)
        # /sora-admin settings offers exactly the settings' keys, in their order.
        [settings] = [o for o in commands["sora-admin"]["options"] if o["name"] == "settings"]
        key = next(o for o in settings["options"] if o["name"] == "key")
        assert [c["value"] for c in key["choices"]] == [spec.key for spec in SETTING_KEYS]
        assert [c["name"] for c in key["choices"]] == [spec.label for spec in SETTING_KEYS]
        # The new server's /sora works at once, under its own budget.
        await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=ALICE,
            guild_id=guild_id,
            channel_id=channel_id,
        )

        async def held() -> bool:
            balance = await world.rc.core.service.balance(alice(guild_id))
            return balance.held + balance.used == UNIT

        await eventually(held)


async def test_with_global_commands_joining_a_server_syncs_nothing(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim, discord_guild_ids="") as world:
        syncs = len(fake.find("PUT", r"/applications/\d+(/guilds/\d+)?/commands"))
        guild_id, channel_id = await join(fake, "newcomer")
        # The global /sora reaches the new server: its interaction is answered.
        record = await fake.slash(
            "sora-jobs", [], user=ALICE, guild_id=guild_id, channel_id=channel_id
        )
        await reply(world, record)
        assert len(fake.find("PUT", r"/applications/\d+(/guilds/\d+)?/commands")) == syncs
        assert guild_id not in fake.guild_commands


async def test_leaving_a_server_cancels_its_queued_job_and_keeps_the_others(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, database_url: str
) -> None:
    async with bot_on(fake, tmp_path, sim, database_url=database_url) as world:
        service = world.rc.core.service
        _, queued = await running_job(world)  # Alice's slots full; this one waits in line
        at_evolink = [
            j for j in await service.recent_jobs(alice(world.guild_id)) if j.id != queued.id
        ]
        before = await service.balance(alice(world.guild_id))
        assert queued.status == JobStatus.PENDING and before.queued == queued.reserved > 0
        submits = len([r for r in sim.requests if r.kind == "submit"])

        await leave(fake, world.guild_id)

        async def cancelled() -> bool:
            return (await service.get_job(queued.id)).status == JobStatus.CANCELLED

        await eventually(cancelled)
        after = await service.balance(alice(world.guild_id))
        assert after.held == before.held - queued.reserved and after.queued == Decimal(0)
        assert after.used == before.used  # nothing charged for it
        # The jobs EvoLink already has go on, still holding their credits.
        for job in at_evolink:
            assert (await service.get_job(job.id)).status == JobStatus.SUBMITTED
        assert len([r for r in sim.requests if r.kind == "submit"]) == submits
        # Idempotent: the core finds nothing more to cancel.
        assert await service.workspace_removed("discord", world.guild_id, "again") == 0


async def test_a_refused_sync_on_join_is_a_warning_and_the_bot_goes_on(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with bot_on(fake, tmp_path, sim) as world:
        fake.fail("PUT", r"/applications/\d+/guilds/\d+/commands", 403, code=50001)
        guild_id, _ = await join(fake, "no-commands-scope")
        await fake.wait_for(lambda r: r.method == "PUT" and guild_id in r.path)

        async def warned() -> bool:
            return any("command sync failed (403" in r.getMessage() for r in caplog.records)

        await eventually(warned)
        # The gateway session carries on: a /sora in the first server is still answered.
        record = await fake.slash(
            "sora-jobs", [], user=ALICE, guild_id=world.guild_id, channel_id=world.channel_id
        )
        await reply(world, record)
