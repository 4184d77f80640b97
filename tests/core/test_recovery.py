"""Nothing is lost on a crash: a core stopped between any two steps of a job's life leaves a
row that the next start (same database, on each engine; same EvoLink) finishes — one task,
one delivery."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from bot.domain.models import JobStatus, Surface
from bot.infra.simulator import Simulator
from tests.conftest import ALICE
from tests.support import RecordingPort, RunningCore, running_core


async def _accept(rc: RunningCore) -> str:
    """A job accepted and held, as if the process died right after the commit."""
    service = rc.core.service
    request = service.parse("a paper boat on a rainy street")
    job = await rc.core.book.accept(ALICE, request, Surface(channel="C"), service.quote(request))
    return job.id


async def _finish_after_restart(
    tmp_path: Path, database_url: str, sim: Simulator, job_id: str
) -> RecordingPort:
    port = RecordingPort("test")
    async with running_core(tmp_path, sim, database_url=database_url, ports=[port]) as rc:
        await port.wait_for(job_id, "delivered", timeout=15)
        await rc.core.tracker.wait_idle(10)
        job = await rc.core.service.get_job(job_id)
        assert job.status == JobStatus.DELIVERED
        balance = await rc.core.service.balance(ALICE)
        assert balance.held == 0 and balance.used == job.charged
    return port


def _tasks_for(sim: Simulator, job_id: str) -> int:
    return sum(1 for t in sim.tasks.values() if t.idempotency_key == job_id)


async def test_killed_after_accepting_before_sending(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim, database_url=database_url, start=False) as rc:
        job_id = await _accept(rc)
    assert _tasks_for(sim, job_id) == 0
    await _finish_after_restart(tmp_path, database_url, sim, job_id)
    assert _tasks_for(sim, job_id) == 1


async def test_killed_after_sending_before_recording_the_task(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim, database_url=database_url, start=False) as rc:
        job_id = await _accept(rc)
        job = await rc.core.service.get_job(job_id)
        await rc.core.evolink.submit(job.id, job.request, None)  # the POST went out, then: kill
    assert (await _peek_status(tmp_path, database_url, sim, job_id)) == JobStatus.PENDING
    await _finish_after_restart(tmp_path, database_url, sim, job_id)
    assert _tasks_for(sim, job_id) == 1, "the re-submit reused the task (Idempotency-Key)"


async def test_killed_while_the_task_runs(tmp_path: Path, database_url: str) -> None:
    from tests.support import running_simulator

    async with running_simulator(task_seconds=2.0) as slow:
        async with running_core(tmp_path, slow, database_url=database_url) as rc:
            service = rc.core.service
            job = await service.submit(ALICE, service.parse("waves"), Surface())
            async with asyncio.timeout(10):  # the task id is recorded: EvoLink runs it
                while (await service.get_job(job.id)).status != JobStatus.SUBMITTED:
                    await _tick()
        assert (await _peek_status(tmp_path, database_url, slow, job.id)) == JobStatus.SUBMITTED
        await _finish_after_restart(tmp_path, database_url, slow, job.id)
        assert _tasks_for(slow, job.id) == 1


async def test_killed_while_delivering_before_the_download(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim, database_url=database_url, start=False) as rc:
        job_id = await _accept(rc)
        job = await rc.core.service.get_job(job_id)
        task = await rc.core.evolink.submit(job.id, job.request, None)
        await rc.core.book.mark_submitted(job_id, task.id, task.estimated_time)
        done = await _wait_completed(rc, task.id)
        await rc.core.book.mark_delivering(job_id, done, Decimal("2.5"))
    port = await _finish_after_restart(tmp_path, database_url, sim, job_id)
    assert len(port.of(job_id, "delivered")) == 1


async def test_killed_after_the_download_before_posting(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    port = RecordingPort("test")
    port.fail_deliveries = 10**6  # the platform never takes it in this life
    async with running_core(tmp_path, sim, database_url=database_url, ports=[port]) as rc:
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("rain"), Surface())
        async with asyncio.timeout(10):  # the downloaded file is recorded
            while (await service.get_job(job.id)).media_path is None:
                await _tick()
    downloads_before = sum(1 for r in sim.requests if r.kind == "download")
    assert (await _peek_status(tmp_path, database_url, sim, job.id)) == JobStatus.DELIVERING
    after = await _finish_after_restart(tmp_path, database_url, sim, job.id)
    assert len(after.of(job.id, "delivered")) == 1
    downloads_after = sum(1 for r in sim.requests if r.kind == "download")
    assert downloads_after == downloads_before == 1, "the saved file was reused, not re-downloaded"


async def test_a_delivered_job_is_not_delivered_again_after_restart(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    port = RecordingPort("test")
    async with running_core(tmp_path, sim, database_url=database_url, ports=[port]) as rc:
        job = await rc.core.service.submit(ALICE, rc.core.service.parse("sun"), Surface())
        await port.wait_for(job.id, "delivered")
        await rc.core.tracker.wait_idle(5)
    again = RecordingPort("test")
    async with running_core(tmp_path, sim, database_url=database_url, ports=[again]) as rc:
        assert await rc.core.tracker.resume() == 0
    assert again.events == []


async def _tick() -> None:
    """The pause between two looks at the store (each loop is bounded by a timeout)."""
    await asyncio.sleep(0.05)


async def _peek_status(tmp_path: Path, database_url: str, sim: Simulator, job_id: str) -> JobStatus:
    async with running_core(tmp_path, sim, database_url=database_url, start=False) as rc:
        return (await rc.core.service.get_job(job_id)).status


async def _wait_completed(rc: RunningCore, task_id: str) -> str:
    async with asyncio.timeout(10):
        while True:
            snap = await rc.core.evolink.get_task(task_id)
            if snap.status == "completed":
                return snap.results[0]
            await _tick()
