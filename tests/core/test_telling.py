"""A failed or cancelled job is told once: never by two tellers at the same time, never again
once told, and the start-up sweep of untold endings never races a job failing meanwhile.

Both tests hold the port inside its first notice (a gate) so the window that used to produce a
second notice is open for as long as the test wants: they fail deterministically on a tracker
without the guard, instead of by luck.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot.domain.models import Balance, Job, JobStatus, Requester, Surface
from bot.infra.simulator import Simulator
from tests.support import RecordingPort, running_core

ALICE = Requester(platform="test", workspace="W1", user="alice")


class GatedPort(RecordingPort):
    """Records each failure notice when it starts, then waits for the gate to open."""

    def __init__(self) -> None:
        super().__init__("test")
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.first_started = asyncio.Event()

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        self.started.append(job.id)
        self.first_started.set()
        await self.gate.wait()
        await super().on_job_failed(job, reason, balance)


async def _told(rc_book: object, job_id: str) -> Job:
    from bot.services.jobs import JobBook

    assert isinstance(rc_book, JobBook)
    async with asyncio.timeout(10):
        while True:
            job = await rc_book.job(job_id)
            if job.told_at is not None:
                return job
            await asyncio.sleep(0.02)


async def test_a_second_teller_while_the_first_is_telling_tells_nothing(
    tmp_path: Path, sim: Simulator
) -> None:
    port = GatedPort()
    sim.config.http_errors["submit"] = [400]  # refused at once: the job fails
    async with running_core(tmp_path, sim, ports=[port]) as rc:
        job = await rc.core.service.submit(ALICE, rc.core.service.parse("a boat"), Surface())
        await asyncio.wait_for(port.first_started.wait(), 10)  # the first telling is under way
        # A second teller (a restart sweep, a cancel) arrives now: it must return at once
        # without calling the port, while the first is still inside the port.
        await asyncio.wait_for(rc.core.tracker.tell_ending(job.id), 5)
        assert port.started == [job.id]
        port.gate.set()
        told = await _told(rc.core.book, job.id)
    assert told.status == JobStatus.FAILED
    assert told.tell_attempts == 1
    assert len(port.of(job.id, "failed")) == 1


async def test_the_start_up_sweep_does_not_retell_a_job_failing_during_resume(
    tmp_path: Path, sim: Simulator
) -> None:
    port = GatedPort()
    async with running_core(tmp_path, sim, start=False, ports=[port]) as rc:
        core = rc.core
        # A job accepted before a crash, still waiting in the queue: resume starts it.
        accepted = await core.book.accept(
            ALICE, core.service.parse("a boat"), Surface(), Decimal("23.04")
        )
        sim.config.http_errors["submit"] = [400]
        dispatch = core.tracker.dispatch

        async def dispatch_then_let_it_fail() -> None:
            await dispatch()
            # Hold resume here until the job has failed and its notice is under way: the
            # moment a sweep of untold endings after this point would find it untold.
            await asyncio.wait_for(port.first_started.wait(), 10)

        core.tracker.dispatch = dispatch_then_let_it_fail  # type: ignore[method-assign]
        await core.start()
        core.tracker.dispatch = dispatch  # type: ignore[method-assign]
        port.gate.set()
        told = await _told(core.book, accepted.id)
        await core.tracker.wait_idle(5)
    assert port.started == [accepted.id], "the user was told twice"
    assert told.tell_attempts == 1
    assert len(port.of(accepted.id, "failed")) == 1


async def test_a_platform_that_connects_after_the_start_is_told_what_a_crash_left_untold(
    tmp_path: Path, sim: Simulator
) -> None:
    sim.config.http_errors["submit"] = [400]
    async with running_core(tmp_path, sim) as rc:  # no port in this life: nobody to tell
        job = await rc.core.service.submit(ALICE, rc.core.service.parse("a boat"), Surface())
        await sim.wait_for_request(lambda r: r.kind == "submit")
        await rc.core.tracker.wait_idle(10)  # the refusal was recorded: nothing is followed
        assert (await rc.core.book.job(job.id)).status == JobStatus.FAILED
    port = RecordingPort("test")
    async with running_core(tmp_path, sim) as rc:  # started before its platform connects
        rc.core.register_port(port)  # as Discord's port does once it has logged in
        await port.wait_for(job.id, "failed", timeout=10)
        told = await _told(rc.core.book, job.id)
        await rc.core.tracker.tell_ending(job.id)  # a late second teller changes nothing
    assert told.tell_attempts == 1
    assert len(port.of(job.id, "failed")) == 1
