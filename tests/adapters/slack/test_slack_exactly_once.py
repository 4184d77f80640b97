"""A crash between Slack taking the video and the database recording it: the next start finds
the file in the channel (files.list) and does not upload it again — and uploads it when it is
not there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.domain.models import JobStatus
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import slack_bot_on
from tests.adapters.slack.fake_slack import FakeSlack
from tests.support import forget_capture


async def _deliver_then_forget(fake: FakeSlack, tmp_path: Path, sim: Simulator) -> str:
    async with slack_bot_on(fake, tmp_path, sim) as world:
        status, _ = await world.command("a paper boat")
        assert status == 200
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        await world.rc.core.tracker.wait_idle(5)
    with sqlite3.connect(tmp_path / "bot.db") as db:  # the bot is stopped: rewind the record
        db.execute(
            "UPDATE jobs SET status = 'delivering', finished_at = NULL WHERE id = ?", (job.id,)
        )
        forget_capture(db, job.id)
    return job.id


async def _finish(fake: FakeSlack, tmp_path: Path, sim: Simulator, job_id: str) -> None:
    async with slack_bot_on(fake, tmp_path, sim) as world:
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED, job_id)
        assert job.delivery_attempts == 2
        captures = await world.rc.core.store.fetchall(
            "SELECT COUNT(*) FROM ledger WHERE job_id = ? AND kind = 'capture'", (job_id,)
        )
        assert captures[0][0] == 1
        assert (await world.rc.core.ledger.verify()).agrees, "totals match the entries"


async def test_a_file_uploaded_before_a_crash_is_not_uploaded_again(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _deliver_then_forget(fake, tmp_path, sim)
    await _finish(fake, tmp_path, sim, job_id)
    assert len(fake.shared_files) == 1
    assert fake.ok_calls_to("files.list"), "it looked before uploading"


async def test_a_file_that_never_arrived_is_uploaded_after_the_crash(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    job_id = await _deliver_then_forget(fake, tmp_path, sim)
    fake.shared_files.clear()  # the upload never completed
    await _finish(fake, tmp_path, sim, job_id)
    assert len(fake.shared_files) == 1
