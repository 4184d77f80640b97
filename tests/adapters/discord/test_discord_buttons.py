"""Cancel / Again / Remix buttons, pressed through the real client, and surviving a restart."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.models import Job, JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, InteractionRecord
from tests.adapters.discord.helpers import (
    ALICE,
    BOB,
    eventually,
    is_upload,
    posted_text,
    sora_options,
)
from tests.prices import LONGEST


def who(world: World, user: dict[str, Any]) -> Requester:
    return Requester(platform="discord", workspace=world.guild_id, user=user["id"])


async def running_job(world: World) -> tuple[InteractionRecord, Job]:
    """Alice's /sora waiting in line behind her jobs already at EvoLink (slow simulated
    tasks fill her slots), so it has not reached EvoLink: its status message shows Cancel."""
    world.rc.simulator.config.task_seconds = 60
    service = world.rc.core.service
    for _ in range(world.rc.settings.max_jobs_per_user):
        await world.fake.slash(
            "sora",
            sora_options("a slow paper boat"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )

    async def slots_full() -> bool:
        jobs = await service.recent_jobs(who(world, ALICE))
        return sum(j.status == JobStatus.SUBMITTED for j in jobs) == len(jobs) > 0

    await eventually(slots_full)
    record = await world.fake.slash(
        "sora",
        sora_options("a slow paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )

    async def cancel_shown() -> bool:
        msg = world.fake.messages.get(record.original_message_id or "")
        ids = [
            c.get("custom_id", "")
            for row in (msg or {}).get("components", [])
            for c in row["components"]
        ]
        return any(i.startswith("sora:cancel:") for i in ids)

    await eventually(cancel_shown)
    jobs = await service.recent_jobs(who(world, ALICE))
    return record, jobs[0]


async def click(
    world: World, custom_id: str, message_id: str, user: dict[str, Any], **kw: Any
) -> InteractionRecord:
    record = await world.fake.click(
        custom_id,
        message_id=message_id,
        user=user,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        **kw,
    )
    await world.fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    return record


async def followup_text(world: World, record: InteractionRecord) -> str:
    req = await world.fake.wait_for(lambda r: r.method == "POST" and r.path.endswith(record.token))
    return str(req.json["content"])


async def test_cancel_by_someone_else_is_refused_and_by_the_requester_releases_the_hold(
    world: World,
) -> None:
    record, job = await running_job(world)
    service = world.rc.core.service
    held = (await service.balance(who(world, ALICE))).held
    assert held >= job.reserved > 0 and job.status == JobStatus.PENDING and job.queued
    message_id = record.original_message_id or ""

    bob = await click(world, f"sora:cancel:{job.id}", message_id, BOB)
    assert "Only the person who asked" in await followup_text(world, bob)
    assert (await service.get_job(job.id)).status == JobStatus.PENDING

    alice = await click(world, f"sora:cancel:{job.id}", message_id, ALICE)
    assert "returned" in await followup_text(world, alice)
    assert (await service.get_job(job.id)).status == JobStatus.CANCELLED
    balance = await service.balance(who(world, ALICE))
    assert balance.held == held - job.reserved and balance.used == 0

    async def shows_cancelled() -> bool:
        embed = world.fake.messages[message_id]["embeds"][0]
        return "Cancelled" in embed["description"]

    await eventually(shows_cancelled)
    buttons = [
        c["custom_id"]
        for row in world.fake.messages[message_id]["components"]
        for c in row["components"]
    ]
    assert buttons == [f"sora:again:{job.id}"]


async def test_a_server_manager_may_cancel_someone_elses_job(world: World) -> None:
    record, job = await running_job(world)
    bob = await click(
        world, f"sora:cancel:{job.id}", record.original_message_id or "", BOB, admin=True
    )
    assert "returned" in await followup_text(world, bob)
    assert (await world.rc.core.service.get_job(job.id)).status == JobStatus.CANCELLED


async def test_a_button_on_a_message_from_before_a_restart_still_works(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim) as first:
        record, job = await running_job(first)
    # A new process: a new client and a new core on the same database file.
    async with bot_on(fake, tmp_path, sim) as second:
        alice = await click(
            second, f"sora:cancel:{job.id}", record.original_message_id or "", ALICE
        )
        assert "returned" in await followup_text(second, alice)
        assert (await second.rc.core.service.get_job(job.id)).status == JobStatus.CANCELLED
        jobs = await second.rc.core.service.recent_jobs(who(second, ALICE))
        still = sum((j.reserved for j in jobs if not j.status.terminal), Decimal(0))
        assert (await second.rc.core.service.balance(who(second, ALICE))).held == still


async def test_again_makes_a_new_job_for_the_presser_with_the_same_options(world: World) -> None:
    fake = world.fake
    first = await fake.slash(
        "sora",
        sora_options("a paper boat", aspect_ratio="16:9", duration=LONGEST),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(is_upload, within=15)
    job = (await world.rc.core.service.recent_jobs(who(world, ALICE)))[0]

    await click(world, f"sora:again:{job.id}", first.original_message_id or "", BOB)
    await eventually(lambda: _delivered_count(world, who(world, BOB)))
    again = (await world.rc.core.service.recent_jobs(who(world, BOB)))[0]
    assert again.request == job.request and again.id != job.id
    assert len([r for r in fake.requests if is_upload(r)]) == 2


async def _delivered_count(world: World, requester: Requester) -> bool:
    jobs = await world.rc.core.service.recent_jobs(requester)
    return bool(jobs) and jobs[0].status == JobStatus.DELIVERED


async def test_remix_is_refused_plainly_when_no_model_remixes_the_video(world: World) -> None:
    """EvoLink's current models have no remix: a delivered video shows no Remix button, and a
    remix asked for anyway is answered in plain words, with nothing held or sent."""
    fake = world.fake
    first = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(is_upload, within=15)
    service = world.rc.core.service
    await eventually(lambda: _delivered_count(world, who(world, ALICE)))
    job = (await service.recent_jobs(who(world, ALICE)))[0]
    assert service.catalog.remix_model_for(job.request.model) is None
    await eventually(lambda: _has_buttons(world, first.original_message_id or ""))
    assert f"sora:remix:{job.id}" not in _buttons(world, first.original_message_id or "")

    # A status message from before the switch still carries a Remix button: pressing it gets
    # the modal, and its submit the plain refusal.
    old = fake.messages[first.original_message_id or ""]
    remix_button = {"type": 2, "style": 1, "label": "Remix", "custom_id": f"sora:remix:{job.id}"}
    old.setdefault("components", []).append({"type": 1, "components": [remix_button]})
    press = await click(world, f"sora:remix:{job.id}", first.original_message_id or "", ALICE)
    assert press.callback is not None and press.callback["type"] == 9  # the modal
    record = await fake.submit_modal(
        f"sora:remix-modal:{job.id}",
        {"change": "make it night"},
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    note = await fake.wait_for(
        lambda r: r.method == "POST" and r.path.endswith(record.token), within=10
    )
    assert "cannot be remixed" in posted_text(note)
    assert len(await service.recent_jobs(who(world, ALICE))) == 1
    assert len([r for r in world.rc.simulator.requests if r.kind == "submit"]) == 1


async def _has_buttons(world: World, message_id: str) -> bool:
    return bool(_buttons(world, message_id))


def _buttons(world: World, message_id: str) -> list[str]:
    message = world.fake.messages.get(message_id) or {}
    return [
        c.get("custom_id", "") for row in message.get("components", []) for c in row["components"]
    ]


async def test_once_evolink_has_the_job_cancel_is_gone_and_a_late_press_says_why(
    world: World,
) -> None:
    """EvoLink bills every task it takes and has no cancel: the submitted job's status message
    loses its Cancel button, and a press on an old one (or /sora cancel) is answered plainly,
    with nothing released; the job is delivered and charged what EvoLink billed."""
    world.rc.simulator.config.task_seconds = 3
    record = await world.fake.slash(
        "sora",
        sora_options("a paper boat at dusk"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    service = world.rc.core.service

    async def submitted_shown() -> bool:
        jobs = await service.recent_jobs(who(world, ALICE))
        shown = world.fake.messages.get(record.original_message_id or "")
        return (
            bool(jobs)
            and jobs[0].status == JobStatus.SUBMITTED
            and shown is not None
            and "Generating" in str(shown.get("embeds"))
        )

    await eventually(submitted_shown)
    message_id = record.original_message_id or ""
    job = (await service.recent_jobs(who(world, ALICE)))[0]
    assert not any(b.startswith("sora:cancel:") for b in _buttons(world, message_id))
    held = (await service.balance(who(world, ALICE))).held
    # A press that left before the edit arrived: on the message as it was while pending.
    shown = world.fake.messages[message_id]
    now_shown = shown.get("components")
    cancel = {"type": 2, "style": 4, "label": "Cancel", "custom_id": f"sora:cancel:{job.id}"}
    shown["components"] = [{"type": 1, "components": [cancel]}]
    late = await click(world, f"sora:cancel:{job.id}", message_id, ALICE)
    shown["components"] = now_shown
    answer = await followup_text(world, late)
    assert "EvoLink is already rendering" in answer and "charged" in answer
    assert (await service.balance(who(world, ALICE))).held == held == job.reserved
    await world.fake.wait_for(is_upload, within=15)
    await eventually(lambda: _delivered_count(world, who(world, ALICE)))
    done = await service.get_job(job.id)
    billed = world.rc.simulator.tasks[done.task_id or ""].credits_reserved
    assert done.charged == billed
    assert (await service.balance(who(world, ALICE))).used == billed
