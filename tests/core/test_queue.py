"""The fair queue: concurrency limits, round-robin between users, places in line, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bot.domain.models import JobStatus, Requester, Surface
from bot.domain.queue import Waiting, fair_order, plan
from bot.infra.simulator import Simulator
from tests.conftest import ALICE, BOB
from tests.prices import LONG, LONGEST
from tests.support import RecordingPort, RunningCore

HOG = Requester(platform="test", workspace="W1", user="hog")


def w(job: str, user: str, at: str, workspace: str = "W1") -> Waiting:
    return Waiting(job, "test", workspace, user, at)


def test_round_robin_between_users_not_first_come() -> None:
    waiting = [w(f"h{i}", "hog", f"2026-01-01T00:00:0{i}") for i in range(6)]
    waiting += [w("a1", "alice", "2026-01-01T00:01:00"), w("b1", "bob", "2026-01-01T00:02:00")]
    in_flight = {"test:W1:hog": 2}
    order = [job.job_id for job in fair_order(waiting, in_flight, {})]
    assert order[:3] == ["a1", "b1", "h0"]  # the hog, already running two, goes last
    assert order[3:] == ["h1", "h2", "h3", "h4", "h5"]


def test_plan_respects_user_and_workspace_limits_and_numbers_the_line() -> None:
    waiting = [w(f"h{i}", "hog", f"t{i}") for i in range(4)] + [w("a1", "alice", "t9")]
    decided = plan(waiting, {}, {}, {}, max_per_user=1, max_per_workspace=2)
    assert [job.job_id for job in decided.start] == ["h0", "a1"]
    assert decided.positions == {"h1": 1, "h2": 2, "h3": 3}
    other = plan(
        [w("x", "u", "t", "W2")], {}, {"test:W1": 5}, {}, max_per_user=1, max_per_workspace=2
    )
    assert [job.job_id for job in other.start] == ["x"], "another workspace is not blocked"


@contextmanager
def evolink_time_stands_still(sim: Simulator) -> Iterator[None]:
    """Inside the block the simulator's clock is frozen: no task moves on or ends, so the
    line cannot move while the test reads it (however slow the machine)."""
    frozen, running = sim.clock(), sim.clock
    sim.clock = lambda: frozen
    try:
        yield
    finally:
        sim.clock = running


@pytest.fixture
def core_settings(database_url: str) -> dict[str, object]:
    return {"max_jobs_per_user": 1, "max_jobs_per_workspace": 2, "database_url": database_url}


async def test_three_users_one_hog_nobody_starves(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    sim.config.task_seconds = 1.0
    service = rc.core.service
    with evolink_time_stands_still(sim):  # the hog's first job cannot end meanwhile
        hog_jobs = [
            await service.submit(HOG, service.parse(f"hog {i}"), Surface()) for i in range(5)
        ]
        # The hog's line is drawn before alice and bob ask: its last job is told its place.
        placed = await port.wait_for(hog_jobs[4].id, "progress")
        assert placed.job.queued and placed.job.queue_position == 4
        alice = await service.submit(ALICE, service.parse("alice"), Surface())
        bob = await service.submit(BOB, service.parse("bob"), Surface())
        await port.wait_for(bob.id, "progress")  # bob is placed in line too
    ids = [j.id for j in hog_jobs] + [alice.id, bob.id]
    await asyncio.wait_for(asyncio.gather(*(port.wait_for(i, "delivered", 30) for i in ids)), 40)

    order = [r.headers["Idempotency-Key"] for r in sim.requests if r.kind == "submit"]
    assert sorted(order) == sorted(ids) and len(order) == len(ids), "each job sent exactly once"
    # hog's first job runs at once; alice and bob start before the hog's third job
    assert order.index(alice.id) < order.index(hog_jobs[2].id)
    assert order.index(bob.id) < order.index(hog_jobs[2].id)
    # never more than 1 per user / 2 per workspace at EvoLink at once
    assert max(_concurrency(sim, {j.id for j in hog_jobs})) <= 1

    queued_events = [e for e in port.of(hog_jobs[4].id, "progress") if e.job.queued]
    positions = [e.job.queue_position for e in queued_events]
    # 4th in line; 5th once alice and bob are placed ahead (round-robin); then down to 1
    assert positions[0] == 4 and max(positions) == 5 and positions[-1] == 1, positions
    after_peak = positions[positions.index(5) :]
    assert after_peak == sorted(after_peak, reverse=True), positions


def _concurrency(sim: Simulator, job_ids: set[str]) -> list[int]:
    spans = []
    for task in sim.tasks.values():
        if task.idempotency_key in job_ids:
            spans.append((task.started, task.started + task.seconds))
    return [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]


async def test_queued_jobs_hold_credits_and_cancel_releases_them(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    sim.config.task_seconds = 1.0
    service = rc.core.service
    with evolink_time_stands_still(sim):  # the first job cannot end (and free a slot) meanwhile
        first = await service.submit(ALICE, service.parse(f"one --duration {LONGEST}"), Surface())
        second = await service.submit(ALICE, service.parse(f"two --duration {LONGEST}"), Surface())
        await port.wait_for(second.id, "progress")  # the dispatcher placed it in line
        waiting = await service.get_job(second.id)
        assert waiting.status == JobStatus.PENDING and waiting.queued
        assert waiting.queue_position == 1
        balance = await service.balance(ALICE)
        assert balance.held == 2 * LONG and balance.queued == LONG
        await service.cancel(second.id, ALICE)
    await port.wait_for(first.id, "delivered", 15)
    await rc.core.tracker.wait_idle(5)
    assert second.id not in [
        r.headers["Idempotency-Key"] for r in sim.requests if r.kind == "submit"
    ]
    after = await service.balance(ALICE)
    assert after.held == 0 and after.queued == 0 and after.used == LONG


async def test_queued_jobs_survive_a_restart(
    tmp_path: object, database_url: str, sim: Simulator
) -> None:
    from pathlib import Path

    from tests.support import running_core

    path = Path(str(tmp_path))
    sim.config.task_seconds = 1.0
    limits = {"max_jobs_per_user": 1, "max_jobs_per_workspace": 1, "database_url": database_url}
    async with running_core(path, sim, **limits) as rc:
        jobs = [
            await rc.core.service.submit(ALICE, rc.core.service.parse(f"n{i}"), Surface())
            for i in range(3)
        ]
        async with asyncio.timeout(10):  # killed once the first is at EvoLink, the rest in line
            while (await rc.core.service.get_job(jobs[0].id)).status != JobStatus.SUBMITTED:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    port = RecordingPort("test")
    async with running_core(path, sim, ports=[port], **limits) as rc:
        await asyncio.wait_for(
            asyncio.gather(*(port.wait_for(j.id, "delivered", 30) for j in jobs)), 40
        )
    keys = [r.headers["Idempotency-Key"] for r in sim.requests if r.kind == "submit"]
    assert sorted(set(keys)) == sorted(j.id for j in jobs)
