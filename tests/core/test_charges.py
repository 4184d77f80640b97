"""What a job costs is what EvoLink billed: every charge form EvoLink reports is read, a job
EvoLink has cannot be cancelled (it is rendered and charged), a charge off the hold is counted
in /metrics, and `admin reconcile` compares the ledger with the account and each task."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import JobStateError
from bot.domain.models import Job, JobStatus, Surface
from bot.infra.evolink import TaskSnapshot
from bot.infra.simulator import Simulator
from bot.services.reconcile import Reconciliation, ahead_beyond_threshold
from tests.conftest import ALICE
from tests.support import RecordingPort, RunningCore, running_core

TASK: dict[str, Any] = {"id": "task-unified-1", "status": "completed", "progress": 100}


@pytest.mark.parametrize(
    ("fields", "charged", "status"),
    [
        ({"usage": {"credits_used": 23.04}}, Decimal("23.04"), None),
        ({"usage": {"cost": {"credits": "46.08", "usd": 0.68}}}, Decimal("46.08"), None),
        # credits_used wins over cost and billing
        (
            {
                "usage": {"credits_used": 5, "cost": {"credits": 6}},
                "billing": {"charge_status": "charged", "charged_credits": 7},
            },
            Decimal(5),
            "charged",
        ),
        (
            {
                "billing": {
                    "refund_scope": "account_balance",
                    "charge_status": "charged",
                    "reserved_credits": 69.12,
                    "charged_credits": 69.12,
                    "refunded_credits": 23.04,
                }
            },
            Decimal("46.08"),
            "charged",
        ),
        ({"billing": {"charge_status": "charged", "reserved_credits": 8}}, Decimal(8), "charged"),
        (
            {
                "billing": {
                    "charge_status": "released",
                    "reserved_credits": 23.04,
                    "refunded_credits": 23.04,
                }
            },
            Decimal(0),
            "released",
        ),
        ({"billing": {"charge_status": "reserved", "reserved_credits": 8}}, None, "reserved"),
        # a billing object about something else than the account is not ours to read
        ({"billing": {"refund_scope": "voucher", "charge_status": "charged"}}, None, None),
        ({"usage": {"credits_used": True, "cost": "n/a"}}, None, None),
        ({}, None, None),
    ],
)
def test_every_charge_form_is_read(
    fields: dict[str, Any], charged: Decimal | None, status: str | None
) -> None:
    snap = TaskSnapshot.from_api({**TASK, "results": ["https://cdn.example/v.mp4"], **fields})
    assert snap.credits_used == charged and snap.charge_status == status


@pytest.mark.parametrize(
    "results",
    [
        {"results": ["https://cdn.example/v.mp4"]},
        {"result_data": [{"video_url": "https://cdn.example/v.mp4", "duration": 4}]},
        {"result_data": {"video_url": "https://cdn.example/v.mp4"}},
        {"results": [], "result_data": [{"url": "https://cdn.example/v.mp4"}]},
    ],
)
def test_results_come_from_results_or_result_data(results: dict[str, Any]) -> None:
    assert TaskSnapshot.from_api({**TASK, **results}).results == ["https://cdn.example/v.mp4"]


def test_a_failed_task_keeps_what_evolink_reports_kept() -> None:
    failed = {**TASK, "status": "failed", "error": {"code": "service_error"}}
    assert TaskSnapshot.from_api(failed).kept is None  # said nothing: nothing kept
    kept = TaskSnapshot.from_api({**failed, "usage": {"credits_used": 2.5}})
    assert kept.kept == Decimal("2.5")
    released = {"charge_status": "released", "reserved_credits": 8, "refunded_credits": 8}
    assert TaskSnapshot.from_api({**failed, "billing": released}).kept == 0


async def _submitted(rc: RunningCore, port: RecordingPort, prompt: str) -> Job:
    service = rc.core.service
    job = await service.submit(ALICE, service.parse(prompt), Surface())
    while True:  # progress events come as the job moves; the first after the submit has the task
        event = await port.wait_for(job.id, "progress")
        if event.job.status == JobStatus.SUBMITTED:
            return event.job
        port.events.remove(event)


async def test_a_job_evolink_has_is_not_cancelled_and_is_charged_what_evolink_billed(
    tmp_path: Path, database_url: str, sim: Simulator, port: RecordingPort
) -> None:
    sim.config.task_seconds = 2.0
    async with running_core(tmp_path, sim, database_url=database_url, ports=[port]) as rc:
        job = await _submitted(rc, port, "a lighthouse at night")
        held = (await rc.core.service.balance(ALICE)).held
        with pytest.raises(JobStateError, match="EvoLink is already rendering") as refused:
            await rc.core.service.cancel(job.id, ALICE)
        assert "charged" in str(refused.value)
        assert (await rc.core.service.balance(ALICE)).held == held == job.reserved
        # EvoLink bills more than the quote (a changed price): the ledger follows EvoLink.
        assert job.task_id is not None
        sim.tasks[job.task_id].credits_reserved = job.reserved + Decimal(5)
        await port.wait_for(job.id, "delivered")
        await rc.core.tracker.wait_idle(10)
        done = await rc.core.service.get_job(job.id)
        assert done.status == JobStatus.DELIVERED and port.of(job.id, "cancelled") == []
        assert done.charged == job.reserved + 5 == sim.used_credits
        balance = await rc.core.service.balance(ALICE)
        assert balance.used == sim.used_credits and balance.held == 0
        # ... and the difference from the hold is counted in /metrics.
        text = await rc.core.metrics.render(rc.core.book, rc.core.tracker, rc.core.evolink.stats)
        assert 'sora_charge_mismatch_total{direction="over"} 1' in text
        assert 'sora_charge_mismatch_credits_total{direction="over"} 5' in text
        assert 'sora_charge_mismatch_total{direction="under"} 0' in text


async def _reconcile(rc: RunningCore, *, tasks: bool = True) -> Reconciliation:
    reconciler = rc.core.reconciler
    assert reconciler is not None
    assert await reconciler.sample("test")
    return await reconciler.reconcile(rc.core.ledger.current_period(), tasks=tasks)


async def test_reconcile_is_zero_after_a_normal_run_and_names_what_evolink_billed_beyond(
    tmp_path: Path, database_url: str, sim: Simulator, port: RecordingPort
) -> None:
    async with running_core(tmp_path, sim, database_url=database_url, ports=[port]) as rc:
        reconciler = rc.core.reconciler
        assert reconciler is not None and await reconciler.sample("before")
        service = rc.core.service
        jobs = [
            await service.submit(ALICE, service.parse(prompt), Surface())
            for prompt in ("a red kite", "a blue kite")
        ]
        for job in jobs:
            await port.wait_for(job.id, "delivered")
        await rc.core.tracker.wait_idle(10)

        clean = await _reconcile(rc)
        assert clean.account_used == clean.ledger_captured == sim.used_credits > 0
        assert clean.difference == 0 and clean.tasks == [] and clean.tasks_checked == 2
        assert not ahead_beyond_threshold(clean)

        # Someone else spends 7.5 credits with the same API key, and EvoLink re-bills one
        # task 1.25 credits more than the ledger captured.
        sim.used_credits += Decimal("7.5")
        first = await service.get_job(jobs[0].id)
        assert first.task_id is not None and first.charged is not None
        rebilled = sim.tasks[first.task_id]
        for name in ("credits_charged", "credits_reserved"):
            if hasattr(rebilled, name):
                setattr(rebilled, name, first.charged + Decimal("1.25"))
        found = await _reconcile(rc)
        assert found.difference == Decimal("7.5")
        assert [(t.job_id, t.difference) for t in found.tasks] == [(first.id, Decimal("1.25"))]
        assert found.unexplained == Decimal("6.25")
        assert any("another user" in cause for cause in found.causes)
        assert ahead_beyond_threshold(found)

        # The sampler raises the alert for it (sent once a day by oversight).
        told: asyncio.Queue[Reconciliation] = asyncio.Queue()

        async def on_ahead(report: Reconciliation) -> None:
            await told.put(report)

        sampler = asyncio.create_task(reconciler.run_sampler(3600.0, on_ahead))
        try:
            alerted = await asyncio.wait_for(told.get(), 10)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
        assert alerted.difference == Decimal("7.5")


async def test_the_bot_samples_the_account_at_start_and_stop(
    tmp_path: Path, database_url: str, sim: Simulator, port: RecordingPort
) -> None:
    async def reasons(rc: RunningCore) -> list[str]:
        async with rc.core.store.reading() as tx:
            cur = await tx.execute("SELECT reason FROM account_samples ORDER BY id")
            return [r[0] for r in await cur.fetchall()]

    async with running_core(
        tmp_path, sim, database_url=database_url, ports=[port], account_sample_minutes=5
    ) as rc:
        assert rc.core.reconciler is not None
        await asyncio.wait_for(rc.core.reconciler.sampled.wait(), 10)  # the sampler's first act
        assert await reasons(rc) == ["start"]
    async with running_core(
        tmp_path, sim, database_url=database_url, ports=[port], start=False
    ) as rc:
        assert await reasons(rc) == ["start", "stop"]
