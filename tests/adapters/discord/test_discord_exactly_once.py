"""A crash between Discord taking the video (or a failure notice) and the database recording it:
the next start finds the post in the channel and does not post it again (and posts it when it is
not there, or when the channel cannot be read)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.domain.models import JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, RecordedRequest
from tests.adapters.discord.helpers import ALICE, eventually, is_upload, posted_text, sora_options
from tests.support import forget_capture


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
        forget_capture(db, job.id)
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
        assert (await world.rc.core.ledger.verify()).agrees, "totals match the entries"


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


# -- failure notices: a retelling after a crash looks for the earlier notice first ----------


def is_failure_notice(req: RecordedRequest) -> bool:
    return req.method == "POST" and "could not be made" in posted_text(req) and req.status == 200


async def _fail_then_forget_telling(fake: FakeDiscord, tmp_path: Path, sim: Simulator) -> str:
    """Fail one job and tell it, then undo `told_at` as if the process died right after the
    notice went out (the attempt was counted before the post: tell_attempts stays 1)."""
    async with bot_on(fake, tmp_path, sim) as world:
        world.rc.simulator.config.fail_next = ["content_policy_violation"]
        await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        await fake.wait_for(is_failure_notice, within=15)
        service = world.rc.core.service
        who = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        job = (await service.recent_jobs(who))[0]

        async def told() -> bool:
            return (await service.get_job(job.id)).told_at is not None

        await eventually(told)
        await world.rc.core.tracker.wait_idle(5)
    with sqlite3.connect(tmp_path / "bot.db") as db:
        db.execute("UPDATE jobs SET told_at = NULL WHERE id = ?", (job.id,))
        attempts = db.execute("SELECT tell_attempts FROM jobs WHERE id = ?", (job.id,)).fetchone()
    assert attempts == (1,)
    return job.id


async def _retell(fake: FakeDiscord, tmp_path: Path, sim: Simulator, job_id: str) -> None:
    """Restart and tell the untold ending again, through the tracker (tell_attempts = 2).

    The core's start-up sweep runs before the Discord port is registered (runner: core.start()
    before start_discord), so it skips Discord jobs; the test asks the tracker itself, exactly
    as the sweep would. Should the sweep tell it first, this call is a no-op."""
    async with bot_on(fake, tmp_path, sim) as world:
        service = world.rc.core.service

        async def told() -> bool:
            return (await service.get_job(job_id)).told_at is not None

        await world.rc.core.tracker.tell_ending(job_id)
        await eventually(told, within=15)
        job = await service.get_job(job_id)
        assert job.tell_attempts == 2


def failure_notices_stored(fake: FakeDiscord, job_id: str) -> list[dict[str, object]]:
    return [
        m
        for m in fake.messages.values()
        if "could not be made" in str(m.get("content")) and job_id in str(m.get("content"))
    ]


def history_reads(fake: FakeDiscord) -> list[RecordedRequest]:
    return fake.find("GET", r"/channels/\d+/messages")


async def test_a_failure_told_before_a_crash_is_not_told_again(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _fail_then_forget_telling(fake, tmp_path, sim)
    assert not history_reads(fake), "a first telling does not look"
    await _retell(fake, tmp_path, sim, job_id)
    assert len([r for r in fake.requests if is_failure_notice(r)]) == 1
    assert len(failure_notices_stored(fake, job_id)) == 1
    assert history_reads(fake), "it looked before posting"


async def test_a_failure_notice_that_never_arrived_is_posted_after_the_crash(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _fail_then_forget_telling(fake, tmp_path, sim)
    for message in failure_notices_stored(fake, job_id):
        del fake.messages[str(message["id"])]  # the post never made it
    await _retell(fake, tmp_path, sim, job_id)
    assert len([r for r in fake.requests if is_failure_notice(r)]) == 2
    assert len(failure_notices_stored(fake, job_id)) == 1


async def test_when_the_channel_cannot_be_read_the_failure_is_told_again(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = await _fail_then_forget_telling(fake, tmp_path, sim)
    fake.fail("GET", r"/channels/\d+/messages", 403, code=50001, message="Missing Access")
    await _retell(fake, tmp_path, sim, job_id)
    assert len([r for r in fake.requests if is_failure_notice(r)]) == 2, "twice, not never"
    assert any("earlier notice" in r.getMessage() for r in caplog.records)
