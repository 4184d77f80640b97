"""The fair queue and role allowances as Discord users see them, through the real client."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.models import JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on, first_guild
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    MANAGER,
    custom_ids,
    embed_text,
    eventually,
    is_upload,
    opt,
    sora_options,
)

ROLE = 8


async def slash(
    world: World, name: str, options: list[dict[str, Any]], user: dict[str, Any], **kw: Any
) -> InteractionRecord:
    return await world.fake.slash(
        name, options, user=user, guild_id=world.guild_id, channel_id=world.channel_id, **kw
    )


async def followup(world: World, record: InteractionRecord) -> dict[str, Any]:
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    assert isinstance(req.json, dict)
    return req.json


def status_of(world: World, record: InteractionRecord) -> str:
    return embed_text(world.fake.messages.get(record.original_message_id or "", {}))


def shown_states(world: World, record: InteractionRecord) -> list[str]:
    """Every status the job's message was edited to, in order."""
    states = []
    for req in world.fake.requests:
        if req.method == "PATCH" and record.token in req.path and isinstance(req.json, dict):
            for embed in req.json.get("embeds") or []:
                states.append(str(embed.get("description", "")).split("\n")[0])
    return states


def who(world: World, user: dict[str, Any]) -> Requester:
    return Requester(platform="discord", workspace=world.guild_id, user=user["id"])


async def test_a_job_beyond_the_users_limit_shows_its_place_in_line_then_runs(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    sim.config.task_seconds = 1.5
    async with bot_on(fake, tmp_path, sim, max_jobs_per_user=1) as world:
        first = await slash(world, "sora", sora_options("the first paper boat"), ALICE)
        await eventually(lambda: _shows(world, first, "Generating"))
        second = await slash(world, "sora", sora_options("the second paper boat"), ALICE)
        await eventually(lambda: _shows(world, second, "Queued — #1 in line"))
        assert "Cancel" in str(world.fake.messages[second.original_message_id or ""])

        # /sora-credits names the queued part of what is held, and the reset date.
        credits = await slash(world, "sora-credits", [], ALICE)
        fields = {
            f["name"]: f["value"] for f in (await followup(world, credits))["embeds"][0]["fields"]
        }
        balance = await world.rc.core.service.balance(who(world, ALICE))
        assert balance.queued > 0 and balance.held > balance.queued
        assert "queued" in fields["Held"] and str(balance.queued.normalize()) in fields["Held"]
        assert fields["Resets"].startswith(f"<t:{int(balance.resets_at.timestamp())}:f>")

        # When the first finishes, the second starts and is delivered too.
        await eventually(lambda: _uploads(world, 2), within=20)
        await eventually(lambda: _shows(world, second, "Delivered"))
        states = shown_states(world, second)
        queued_at = states.index("🕒 Queued — #1 in line")
        assert any(s.startswith("🎬 Generating") for s in states[queued_at:])


async def test_cancel_on_a_queued_job_returns_its_credits_and_it_never_runs(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    sim.config.task_seconds = 60
    async with bot_on(fake, tmp_path, sim, max_jobs_per_user=1) as world:
        service = world.rc.core.service
        first = await slash(world, "sora", sora_options("a slow paper boat"), ALICE)
        await eventually(lambda: _shows(world, first, "Generating"))
        second = await slash(world, "sora", sora_options("a queued paper boat"), ALICE)
        await eventually(lambda: _shows(world, second, "#1 in line"))
        queued = (await service.recent_jobs(who(world, ALICE)))[0]
        assert queued.queued and f"sora:cancel:{queued.id}" in custom_ids(
            world.fake.messages[second.original_message_id or ""]
        )

        press = await world.fake.click(
            f"sora:cancel:{queued.id}",
            message_id=second.original_message_id or "",
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        assert "returned" in str((await followup(world, press))["content"])
        await eventually(lambda: _shows(world, second, "Cancelled"))
        job = await service.get_job(queued.id)
        assert job.status == JobStatus.CANCELLED and job.task_id is None
        balance = await service.balance(who(world, ALICE))
        running = (await service.recent_jobs(who(world, ALICE)))[1]
        assert balance.held == running.reserved and balance.queued == 0
        prompts = [task.prompt for task in world.rc.simulator.tasks.values()]
        assert prompts == ["a slow paper boat"]  # the cancelled one never reached EvoLink


async def test_a_role_allowance_set_by_a_server_manager_applies_to_its_members(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    guild_id, _ = first_guild(fake)
    role = fake.add_role(guild_id, "video-team")
    fake.member_roles[ALICE["id"]] = [role]
    async with bot_on(fake, tmp_path, sim, user_credits_per_period="1") as world:
        service = world.rc.core.service
        refused = await slash(world, "sora", sora_options("a paper boat"), ALICE)
        assert "credits" in str((await followup(world, refused))["content"])

        setting = await slash(
            world,
            "sora-admin",
            [
                {
                    "name": "role-limit",
                    "type": 1,
                    "options": [opt("role", role, ROLE), opt("amount", "500")],
                }
            ],
            MANAGER,
            admin=True,
        )
        assert f"<@&{role}>" in str((await followup(world, setting))["content"])
        audit = await service.audit_log()
        assert [(a["action"], a["actor"]) for a in audit] == [
            ("set-role-limit", f"discord:{MANAGER['id']}")
        ]

        # Alice's requests carry her roles: her allowance is the role's; Bob's is the default.
        credits = await slash(world, "sora-credits", [], ALICE)
        fields = {
            f["name"]: f["value"] for f in (await followup(world, credits))["embeds"][0]["fields"]
        }
        assert fields["Allowance"] == "500"
        credits = await slash(world, "sora-credits", [], BOB)
        fields = {
            f["name"]: f["value"] for f in (await followup(world, credits))["embeds"][0]["fields"]
        }
        assert fields["Allowance"] == "1"

        made = await slash(world, "sora", sora_options("a paper boat"), ALICE)
        await world.fake.wait_for(is_upload, within=15)
        jobs = await service.recent_jobs(who(world, ALICE))
        assert len(jobs) == 1 and jobs[0].charged is not None and jobs[0].charged > Decimal(1)
        left = Decimal(500) - jobs[0].charged
        await eventually(lambda: _shows(world, made, "Delivered"))
        assert f"Left this period: {left.normalize()} credits" in status_of(world, made)


async def _shows(world: World, record: InteractionRecord, text: str) -> bool:
    return text in status_of(world, record)


async def _uploads(world: World, count: int) -> bool:
    return len([r for r in world.fake.requests if is_upload(r)]) >= count
