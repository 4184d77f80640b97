"""Asking an admin, deciding, and budget alerts, end to end through the real client.

Alice's allowance is 1 credit, so every /sora of hers is refused for budget; Bob is in
ADMIN_USER_IDS; MANAGER has Discord's Manage Server permission; Carol is nobody special.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.domain.models import JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on, first_guild
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    CAROL,
    MANAGER,
    custom_ids,
    embed_text,
    eventually,
    is_upload,
    sora_options,
)


@asynccontextmanager
async def budget_world(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, *, admin_channel: bool = True
) -> AsyncIterator[tuple[World, str]]:
    guild_id, _ = first_guild(fake)
    channel = fake.add_channel(guild_id, "budget-admins")
    settings: dict[str, Any] = {
        "user_credits_per_period": "1",
        "admin_user_ids": f"discord:{BOB['id']}",
    }
    if admin_channel:
        settings["discord_admin_channel"] = channel
    async with bot_on(fake, tmp_path, sim, **settings) as world:
        yield world, channel


async def followup_text(world: World, record: InteractionRecord) -> str:
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    return str(req.json["content"])


async def refused_with_offer(world: World, prompt: str) -> dict[str, Any]:
    """Alice's /sora, refused for budget: the ephemeral refusal with its button."""
    record = await world.fake.slash(
        "sora",
        sora_options(prompt),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await followup_text(world, record)
    offers = [
        m
        for m in world.fake.messages.values()
        if "Ask an admin" in str(m.get("content")) and m.get("flags", 0) & 64
    ]
    assert len(offers) == 1, offers
    return offers[0]


async def ask(world: World, prompt: str) -> tuple[dict[str, Any], str]:
    """Refusal → Ask an admin; returns the refusal message (now edited) and the approval id."""
    offer = await refused_with_offer(world, prompt)
    assert "10 minutes" in offer["content"]
    [button] = custom_ids(offer)
    await world.fake.click(
        button,
        message_id=offer["id"],
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await eventually(lambda: _contains(offer, "Asked the admins"))
    assert custom_ids(offer) == []  # the button is gone once used
    [approval] = await world.rc.core.service.pending_approvals("cli", "discord")
    assert approval.id in offer["content"]
    return offer, approval.id


async def decide(
    world: World,
    verb: str,
    approval_id: str,
    message: dict[str, Any],
    user: dict[str, Any],
    **kw: Any,
) -> str:
    record = await world.fake.click(
        f"sora:{verb}:{approval_id}",
        message_id=message["id"],
        user=user,
        guild_id=kw.pop("guild_id", world.guild_id),
        channel_id=message["channel_id"],
        **kw,
    )
    return await followup_text(world, record)


async def test_ask_an_admin_then_two_admins_approve_at_once_grants_once_and_delivers(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim) as (world, admin_channel):
        service = world.rc.core.service
        alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        _, approval_id = await ask(world, "a paper boat for the launch")

        [request] = fake.channel_messages(admin_channel)
        shown = embed_text(request)
        approval = await service.get_approval(approval_id)
        assert f"<@{ALICE['id']}>" in shown and "a paper boat for the launch" in shown
        assert f"{approval.price.normalize()} credits" in shown
        assert "used 0, held 0 of 1 (left 1)" in shown
        assert f"<t:{int(approval.expires_at.timestamp())}:f>" in shown
        assert custom_ids(request) == [f"sora:approve:{approval_id}", f"sora:deny:{approval_id}"]
        assert request["embeds"][0]["footer"]["text"] == f"request {approval_id}"

        # Carol is no admin: refused, nothing decided.
        assert "Only budget admins" in await decide(world, "approve", approval_id, request, CAROL)
        assert (await service.get_approval(approval_id)).status == "pending"

        # Bob (ADMIN_USER_IDS) and the manager (Manage Server) click Approve at once.
        answers = await asyncio.gather(
            decide(world, "approve", approval_id, request, BOB),
            decide(world, "approve", approval_id, request, MANAGER, admin=True),
        )
        assert sum(a.startswith("Approved:") for a in answers) == 1
        [late] = [a for a in answers if not a.startswith("Approved:")]
        decided = await service.get_approval(approval_id)
        assert late.startswith("Already approved by <@")
        assert decided.decided_by is not None and decided.decided_by.split(":")[1] in late
        approvals = [a for a in await service.audit_log() if a["action"] == "approve"]
        assert len(approvals) == 1
        assert (await service.balance(alice)).granted == approval.price

        # The approved video is made and posted in Alice's channel; she is told, and the
        # admins' message shows the decision with the buttons disabled.
        await fake.wait_for(is_upload, within=15)
        [job] = await service.recent_jobs(alice)
        assert job.id == decided.job_id and job.request.prompt == "a paper boat for the launch"
        await eventually(lambda: _job_status(world, job.id, JobStatus.DELIVERED))
        said = [str(m["content"]) for m in fake.channel_messages(world.channel_id)]
        assert any("approved your request" in t and f"<@{ALICE['id']}>" in t for t in said)
        updated = fake.messages[request["id"]]
        assert "Approved by <@" in embed_text(updated)
        assert all(c["disabled"] for row in updated["components"] for c in row["components"])


async def test_deny_by_dm_when_there_is_no_admin_channel_tells_the_requester(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim, admin_channel=False) as (world, unused):
        service = world.rc.core.service
        _, approval_id = await ask(world, "a paper boat nobody pays for")
        assert fake.channel_messages(unused) == []
        dm = fake.dm_channels[BOB["id"]]  # the bot opened a DM with the only Discord admin
        [request] = fake.channel_messages(dm)
        assert "a paper boat nobody pays for" in embed_text(request)
        approval = await service.get_approval(approval_id)
        assert approval.admin_refs == {dm: request["id"]}

        answer = await decide(world, "deny", approval_id, request, BOB, guild_id=None)
        assert answer.startswith("Denied")
        assert (await service.get_approval(approval_id)).status == "denied"

        async def told() -> bool:
            said = [str(m["content"]) for m in fake.channel_messages(world.channel_id)]
            return any("declined your request" in t for t in said)

        await eventually(told)
        assert "Denied by <@" in embed_text(fake.messages[request["id"]])
        alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        assert await service.recent_jobs(alice) == []
        balance = await service.balance(alice)
        assert balance.granted == 0 and balance.held == 0


async def test_a_manager_of_another_server_cannot_decide(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    other_guild, other_channel = fake.add_guild(name="elsewhere")
    async with budget_world(fake, tmp_path, sim) as (world, admin_channel):
        _, approval_id = await ask(world, "a paper boat")
        [request] = fake.channel_messages(admin_channel)
        request = dict(request, channel_id=other_channel)
        answer = await decide(
            world, "approve", approval_id, request, MANAGER, admin=True, guild_id=other_guild
        )
        assert "Only budget admins" in answer
        assert (await world.rc.core.service.get_approval(approval_id)).status == "pending"


async def test_a_team_budget_alert_reaches_the_admin_channel(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim) as (world, admin_channel):
        service = world.rc.core.service
        price = service.quote(service.parse("a paper boat"))
        await service.set_team_budget("cli:ops", "discord", world.guild_id, str(price * 3 / 2))
        bob = Requester(platform="discord", workspace=world.guild_id, user=BOB["id"])
        await service.set_limit("cli:ops", bob, "1000")
        await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=BOB,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await fake.wait_for(is_upload, within=15)

        async def alerted() -> bool:
            return any(
                "Budget alert" in str(m["content"]) for m in fake.channel_messages(admin_channel)
            )

        await eventually(alerted)
        alerts = [
            m for m in fake.channel_messages(admin_channel) if "Budget alert" in str(m["content"])
        ]
        assert len(alerts) == 1 and "**team**" in alerts[0]["content"]
        budget = price * 3 / 2  # one video takes the team past 50% (not 80%): one alert
        assert f"{price.normalize()} of {budget.normalize()} credits" in alerts[0]["content"]


async def test_an_expired_request_is_shown_expired_and_can_no_longer_be_approved(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim) as (world, admin_channel):
        service = world.rc.core.service
        _, approval_id = await ask(world, "a paper boat too late")
        [request] = fake.channel_messages(admin_channel)
        async with service.book.store.transaction() as tx:  # its time has come
            await tx.execute(
                "UPDATE approvals SET expires_at = '2000-01-01T00:00:00.000+00:00' WHERE id = ?",
                (approval_id,),
            )
        assert await service.oversight.expire_due() == 1

        said = [str(m["content"]) for m in fake.channel_messages(world.channel_id)]
        assert any("nobody decided on your request" in t for t in said)
        updated = fake.messages[request["id"]]
        assert "Expired" in embed_text(updated)
        assert all(c["disabled"] for row in updated["components"] for c in row["components"])

        answer = await decide(world, "approve", approval_id, request, BOB)
        assert "expired" in answer
        assert (await service.get_approval(approval_id)).status == "expired"
        assert [a for a in await service.audit_log() if a["action"] == "approve"] == []


async def test_again_refused_for_budget_offers_to_ask_for_the_same_request(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim) as (world, _admin_channel):
        service = world.rc.core.service
        alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        request = service.parse("a paper boat --ar 16:9")
        await service.set_limit("cli:ops", alice, str(service.quote(request) * 3 / 2))
        first = await fake.slash(
            "sora",
            sora_options("a paper boat", aspect_ratio="16:9"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await fake.wait_for(is_upload, within=15)
        await eventually(lambda: _again_shown(world, first))
        [job] = await service.recent_jobs(alice)

        press = await fake.click(
            f"sora:again:{job.id}",
            message_id=first.original_message_id or "",
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await followup_text(world, press)
        [offer] = [m for m in fake.messages.values() if "Ask an admin" in str(m.get("content"))]
        await fake.click(
            custom_ids(offer)[0],
            message_id=offer["id"],
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await eventually(lambda: _contains(offer, "Asked the admins"))
        [approval] = await service.pending_approvals("cli", "discord")
        assert approval.request == job.request and approval.requester.user == ALICE["id"]


async def test_when_the_admin_channel_refuses_the_bot_the_requester_is_told(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with budget_world(fake, tmp_path, sim) as (world, admin_channel):
        fake.fail("POST", rf"/channels/{admin_channel}/messages", 403, code=50001)
        offer = await refused_with_offer(world, "a paper boat")
        await fake.click(
            custom_ids(offer)[0],
            message_id=offer["id"],
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await eventually(lambda: _contains(offer, "could not reach the admins"))
        [approval] = await world.rc.core.service.pending_approvals("cli", "discord")
        assert f"sora-bot admin approve {approval.id}" in offer["content"]
        assert approval.admin_refs == {} and fake.channel_messages(admin_channel) == []


async def _again_shown(world: World, record: InteractionRecord) -> bool:
    message = world.fake.messages.get(record.original_message_id or "", {})
    return any(i.startswith("sora:again:") for i in custom_ids(message))


async def _contains(message: dict[str, Any], text: str) -> bool:
    return text in str(message.get("content"))


async def _job_status(world: World, job_id: str, status: JobStatus) -> bool:
    return (await world.rc.core.service.get_job(job_id)).status == status
