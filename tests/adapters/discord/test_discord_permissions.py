"""Manage Server counts in its own server only; ADMIN_USER_IDS counts in every server.

Two servers: HOME (Alice's jobs and requests) and OTHER, where MANAGER has Manage Server and
the budget admin channel lives (one admin channel may serve several servers). Bob is in
ADMIN_USER_IDS. Every check is on effects: the job, the ledger, the reply Discord received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import PermissionDenied
from bot.domain.models import JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on, first_guild
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import ALICE, BOB, MANAGER, USER, opt
from tests.adapters.discord.test_discord_approvals import ask
from tests.adapters.discord.test_discord_buttons import running_job


@asynccontextmanager
async def two_servers(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> AsyncIterator[tuple[World, str, str]]:
    """The world (HOME is `world.guild_id`), OTHER's id and OTHER's channel."""
    home, _ = first_guild(fake)
    other, other_channel = fake.add_guild(name="elsewhere")
    admin_channel = fake.add_channel(other, "budget-admins")
    async with bot_on(
        fake,
        tmp_path,
        sim,
        discord_guild_ids=f"{home},{other}",
        admin_user_ids=f"discord:{BOB['id']}",
        discord_admin_channel=admin_channel,
    ) as world:
        yield world, other, other_channel


async def answer(world: World, record: InteractionRecord) -> str:
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    return str(req.json["content"])


def alice_at(world: World) -> Requester:
    return Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])


async def test_a_manager_of_another_server_cannot_cancel_grant_limit_or_read_usage_here(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with two_servers(fake, tmp_path, sim) as (world, other, other_channel):
        service = world.rc.core.service
        record, job = await running_job(world)
        alice = alice_at(world)
        before = await service.balance(alice)
        assert before.held >= job.reserved > 0

        async def from_other(user: dict[str, Any], custom_id: str) -> str:
            press = await fake.click(
                custom_id,
                message_id=record.original_message_id or "",
                user=user,
                guild_id=other,
                channel_id=other_channel,
                admin=user is MANAGER,
            )
            return await answer(world, press)

        async def admin_command(sub: str, options: list[dict[str, Any]]) -> str:
            sent = await fake.slash(
                "sora-admin",
                [{"name": sub, "type": 1, "options": options}],
                user=MANAGER,
                guild_id=other,
                channel_id=other_channel,
                admin=True,
            )
            return await answer(world, sent)

        # Cancel: refused in the words of the rule; the job and the hold are untouched.
        refused = await from_other(MANAGER, f"sora:cancel:{job.id}")
        assert "admin of its workspace" in refused
        assert (await service.get_job(job.id)).status == JobStatus.PENDING
        assert (await service.balance(alice)).held == before.held

        # Usage in OTHER shows OTHER only: nothing of HOME's job.
        table = await admin_command("usage", [])
        assert ALICE["id"] not in table

        # Grant and set-limit from OTHER apply to OTHER; HOME's figures do not move.
        await admin_command("grant", [opt("user", ALICE["id"], USER), opt("amount", "50")])
        await admin_command("set-limit", [opt("user", ALICE["id"], USER), opt("amount", "999")])
        there = Requester(platform="discord", workspace=other, user=ALICE["id"])
        assert (await service.balance(there)).granted == 50
        after = await service.balance(alice)
        assert (after.limit, after.granted) == (before.limit, before.granted) == (300, 0)

        # The manager as the adapter describes them, aimed at HOME directly: all refused.
        manager = Requester(
            platform="discord", workspace=other, user=MANAGER["id"], workspace_admin=True
        )
        for attempt in (
            service.grant(manager, alice, "50"),
            service.set_limit(manager, alice, "999"),
            service.set_team_budget(manager, "discord", world.guild_id, "1"),
            service.set_role_limit(manager, "discord", world.guild_id, world.guild_id, "1"),
            service.usage(manager, "discord", world.guild_id),
        ):
            with pytest.raises(PermissionDenied, match="workspace it belongs to"):
                await attempt
        assert (await service.balance(alice)).granted == 0
        home_key = f"discord:{world.guild_id}"
        assert not [a for a in await service.audit_log() if str(a["target"]).startswith(home_key)]

        # Bob (ADMIN_USER_IDS), standing in OTHER, may do all of it in HOME.
        ops = Requester(platform="discord", workspace=other, user=BOB["id"])
        await service.grant(ops, alice, "5")
        assert (await service.balance(alice)).granted == 5
        assert [r.user for r in await service.usage(ops, "discord", world.guild_id)] == [
            ALICE["id"]
        ]
        assert "returned" in await from_other(BOB, f"sora:cancel:{job.id}")
        assert (await service.get_job(job.id)).status == JobStatus.CANCELLED
        assert (await service.balance(alice)).held == before.held - job.reserved


async def test_a_manager_of_another_server_cannot_approve_but_an_operator_can(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with two_servers(fake, tmp_path, sim) as (world, other, _):
        service = world.rc.core.service
        await service.set_limit("cli:ops", alice_at(world), "1")  # every /sora of hers is refused
        _, approval_id = await ask(world, "a paper boat")
        admin_channel = world.rc.core.settings.discord_admin_channel or ""
        [message] = fake.channel_messages(admin_channel)

        async def press(user: dict[str, Any]) -> str:
            clicked = await fake.click(
                f"sora:approve:{approval_id}",
                message_id=message["id"],
                user=user,
                guild_id=other,
                channel_id=admin_channel,
                admin=user is MANAGER,
            )
            return await answer(world, clicked)

        assert "workspace it belongs to" in await press(MANAGER)
        approval = await service.get_approval(approval_id)
        assert approval.status == "pending" and approval.job_id is None
        assert (await service.balance(alice_at(world))).granted == 0

        await press(BOB)
        approval = await service.get_approval(approval_id)
        assert approval.status == "approved" and approval.job_id is not None
        assert approval.decided_by == f"discord:{BOB['id']}"
