"""A crash between Slack taking a failure / cancel note and the database recording it: the next
start finds the note in the job's thread (conversations.replies) and does not post it again; it
posts it when it is not there, or when Slack does not let the bot read the thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.slack import render
from bot.domain.models import Job, JobStatus, Requester
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import ALICE, slack_bot_on
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack, SlackCall


def alice() -> Requester:
    return Requester(platform="slack", workspace=TEAM_ID, user=ALICE)


def notes_posted(fake: FakeSlack, job: Job, words: str) -> list[SlackCall]:
    """The note requests Slack accepted in the job's thread."""
    return [
        c
        for c in fake.ok_calls_to("chat.postMessage")
        if c.args.get("thread_ts") == job.surface.thread
        and words in str(c.args.get("text"))
        and job.id in str(c.args.get("text"))
    ]


def notes_in_thread(fake: FakeSlack, job: Job, words: str) -> list[dict[str, object]]:
    """The notes the thread holds now (what conversations.replies would show)."""
    return [
        m
        for m in fake.messages.get(job.surface.channel or "", [])
        if m.get("thread_ts") == job.surface.thread
        and words in str(m.get("text"))
        and job.id in str(m.get("text"))
    ]


async def _end_then_forget_telling(
    fake: FakeSlack, tmp_path: Path, sim: Simulator, *, cancel: bool = False
) -> Job:
    """End one job (failed, or cancelled while waiting in line behind one at EvoLink), tell
    it, then undo `told_at` as if the process died right after the note went out (the
    attempt was counted before the post)."""
    sim.config.task_seconds = 30.0 if cancel else 0.2
    if not cancel:
        sim.config.fail_next = ["content_policy_violation"]
    async with slack_bot_on(fake, tmp_path, sim, max_jobs_per_user=1) as world:
        status, _ = await world.command("a paper boat")
        assert status == 200
        if cancel:
            running = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)
            await world.command("a second paper boat")
            waiting = await world.wait_job(lambda j: j.queued and bool(j.surface.thread))
            await world.rc.core.service.cancel(waiting.id, alice())
        job = await world.wait_job(lambda j: j.told_at is not None)
        if cancel:  # let the one at EvoLink finish now, so the tracker can be idle
            for task in sim.tasks.values():
                task.seconds = 0.2
            world.rc.core.tracker.wake(running.id)
        await world.rc.core.tracker.wait_idle(10)
    with sqlite3.connect(tmp_path / "bot.db") as db:
        db.execute("UPDATE jobs SET told_at = NULL WHERE id = ?", (job.id,))
        attempts = db.execute("SELECT tell_attempts FROM jobs WHERE id = ?", (job.id,)).fetchone()
    assert attempts == (1,)
    return job


async def _retell(fake: FakeSlack, tmp_path: Path, sim: Simulator, job: Job) -> None:
    """Restart: the start-up sweep tells the untold ending again (tell_attempts = 2)."""
    async with slack_bot_on(fake, tmp_path, sim) as world:
        told = await world.wait_job(lambda j: j.told_at is not None, job.id)
        assert told.tell_attempts == 2
        await world.rc.core.tracker.wait_idle(5)


async def test_a_failure_told_before_a_crash_is_not_told_again(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    job = await _end_then_forget_telling(fake, tmp_path, sim)
    assert job.status == JobStatus.FAILED
    assert not fake.calls_to("conversations.replies"), "a first telling does not look"
    await _retell(fake, tmp_path, sim, job)
    assert len(notes_posted(fake, job, render.FAILED_WORDS)) == 1
    assert len(notes_in_thread(fake, job, render.FAILED_WORDS)) == 1
    looked = fake.ok_calls_to("conversations.replies")
    assert [(c.args["channel"], c.args["ts"]) for c in looked] == [
        (job.surface.channel, job.surface.thread)
    ]


async def test_a_failure_note_that_never_arrived_is_posted_after_the_crash(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    job = await _end_then_forget_telling(fake, tmp_path, sim)
    channel = fake.messages[job.surface.channel or ""]
    for note in notes_in_thread(fake, job, render.FAILED_WORDS):
        channel.remove(note)  # the post never made it
    await _retell(fake, tmp_path, sim, job)
    assert len(notes_posted(fake, job, render.FAILED_WORDS)) == 2
    assert len(notes_in_thread(fake, job, render.FAILED_WORDS)) == 1


async def test_a_cancel_told_before_a_crash_is_not_told_again(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    job = await _end_then_forget_telling(fake, tmp_path, sim, cancel=True)
    assert job.status == JobStatus.CANCELLED
    await _retell(fake, tmp_path, sim, job)
    assert len(notes_posted(fake, job, render.CANCELLED_WORDS)) == 1
    assert fake.ok_calls_to("conversations.replies"), "it looked before posting"


async def test_when_the_thread_cannot_be_read_the_note_is_posted_again(
    fake: FakeSlack, tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    job = await _end_then_forget_telling(fake, tmp_path, sim)
    fake.refuse_history = "missing_scope"  # installed before the *:history scopes
    await _retell(fake, tmp_path, sim, job)
    assert len(notes_posted(fake, job, render.FAILED_WORDS)) == 2, "twice, not never"
    assert any("missing_scope" in r.getMessage() for r in caplog.records)
