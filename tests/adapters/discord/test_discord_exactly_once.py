"""A crash between Discord taking the video and the database recording it: the next start
finds the video in the channel and does not post it again (and posts it when it is not there)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.models import JobStatus, Requester
from bot.simulator import Simulator
from tests.adapters.discord.conftest import bot_on
from tests.adapters.discord.fake_discord import FakeDiscord
from tests.adapters.discord.helpers import ALICE, eventually, is_upload, sora_options


async def _deliver_then_forget(fake: FakeDiscord, tmp_path: Path, sim: Simulator) -> str:
    """Deliver one video, then undo the record as if the process died right after posting."""
    async with bot_on(fake, tmp_path, sim) as world:
        await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await fake.wait_for(is_upload, within=15)
        service = world.rc.core.service
        who = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        job = (await service.recent_jobs(who))[0]

        async def recorded() -> bool:
            return (await service.get_job(job.id)).status == JobStatus.DELIVERED

        await eventually(recorded)
        await world.rc.core.tracker.wait_idle(5)
    # The bot is stopped: rewind the record to "posted, not yet recorded".
    with sqlite3.connect(tmp_path / "bot.db") as db:
        db.execute(
            "UPDATE jobs SET status = 'delivering', finished_at = NULL WHERE id = ?", (job.id,)
        )
        db.execute("DELETE FROM ledger WHERE job_id = ? AND kind = 'capture'", (job.id,))
        attempts = db.execute(
            "SELECT delivery_attempts FROM jobs WHERE id = ?", (job.id,)
        ).fetchone()
    assert attempts == (1,)
    return job.id


async def _finish(fake: FakeDiscord, tmp_path: Path, sim: Simulator, job_id: str) -> None:
    async with bot_on(fake, tmp_path, sim) as world:
        service = world.rc.core.service

        async def recorded() -> bool:
            return (await service.get_job(job_id)).status == JobStatus.DELIVERED

        await eventually(recorded, within=15)
        job = await service.get_job(job_id)
        assert job.delivery_attempts == 2
        captures = await world.rc.core.store.fetchall(
            "SELECT COUNT(*) FROM ledger WHERE job_id = ? AND kind = 'capture'", (job_id,)
        )
        assert captures[0][0] == 1


async def test_a_video_posted_before_a_crash_is_not_posted_again(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _deliver_then_forget(fake, tmp_path, sim)
    await _finish(fake, tmp_path, sim, job_id)
    assert len([r for r in fake.requests if is_upload(r)]) == 1


async def test_a_video_that_never_arrived_is_posted_after_the_crash(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _deliver_then_forget(fake, tmp_path, sim)
    for message_id in [m for m, msg in fake.messages.items() if msg.get("attachments")]:
        del fake.messages[message_id]  # the post never made it
    await _finish(fake, tmp_path, sim, job_id)
    assert len([r for r in fake.requests if is_upload(r)]) == 2
