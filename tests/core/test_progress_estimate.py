"""Progress between EvoLink's reads: a moving estimate from `estimated_time` and the time since
the submit (bot/domain/progress.py), pushed by the notices and marked as an estimate."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import time
from pathlib import Path

from adapters.console import ConsolePort
from adapters.discord import render as discord_render
from adapters.slack import render as slack_render
from bot.domain.models import Job, JobStatus, Requester, Surface, VideoRequest
from bot.domain.progress import ESTIMATE_CAP, estimate_progress, shown_progress
from bot.infra.simulator import Simulator, SimulatorConfig
from tests.support import RecordingPort, running_core

SCALE = 10.0  # task seconds per real second: a 30 s task takes 3 s
ALICE = Requester(platform="test", workspace="W1", user="alice")


def test_the_estimate_moves_with_time_and_never_claims_the_end() -> None:
    assert estimate_progress(0, 0.0, 30) is None  # nothing yet
    assert estimate_progress(0, 10.0, 30) == 30  # a third of the time: 30% (steps of 5)
    assert estimate_progress(0, 14.0, 30) == 45
    assert estimate_progress(0, 300.0, 30) == ESTIMATE_CAP < 100  # overdue: capped
    assert estimate_progress(50, 10.0, 30) is None  # EvoLink says more: its figure wins
    assert estimate_progress(0, 10.0, None) is None  # no estimate to go on: none shown
    shown = shown_progress(10, 30)
    assert (shown.percent, shown.estimated, shown.text) == (30, True, "~30% (estimate)")
    assert shown_progress(40, 30).text == "40%"


async def test_a_30s_task_shows_estimates_before_the_first_real_progress(tmp_path: Path) -> None:
    def clock() -> float:
        return time.monotonic() * SCALE

    config = SimulatorConfig(task_seconds=30.0)
    async with Simulator.serve(config, clock=clock, time_scale=SCALE) as sim:
        port = RecordingPort("test", progress_interval=0.0)
        async with running_core(tmp_path, sim, ports=[port], public=False) as rc:
            rc.core.tracker.time_scale = SCALE  # the tracker reads in task seconds too
            rc.core.tracker.notices.time_scale = SCALE
            service = rc.core.service
            job = await service.submit(ALICE, service.parse("a slow sunrise"), Surface())
            await port.wait_for(job.id, "delivered", timeout=30)

    updates = [e.job for e in port.of(job.id, "progress") if e.job.status == JobStatus.SUBMITTED]
    first_real = next((i for i, j in enumerate(updates) if j.progress > 0), len(updates))
    before = updates[:first_real]
    estimates = [j.progress_estimate for j in before if j.progress_estimate is not None]
    # Several moving estimates while EvoLink still said 0%, each marked as one.
    assert len(set(estimates)) >= 2, [(j.progress, j.progress_estimate) for j in updates]
    assert all(j.shown_progress.estimated for j in before if j.progress_estimate is not None)
    assert estimates == sorted(estimates) and max(estimates) <= ESTIMATE_CAP
    # The shown figure never goes back, estimates and reads together.
    shown = [j.shown_progress.percent for j in updates]
    assert shown == sorted(shown), shown


def test_every_surface_marks_the_estimate() -> None:
    job = Job(
        id="j1",
        requester=ALICE,
        surface=Surface(),
        status=JobStatus.SUBMITTED,
        request=VideoRequest(model="m", prompt="a boat", duration=4, aspect_ratio="16:9"),
        created_at=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        progress=5,
        progress_estimate=40,
    )
    assert "~40% (estimate)" in discord_render.status_line(job)
    assert "~40% (estimate)" in slack_render.status_line(job)
    out = io.StringIO()
    asyncio.run(ConsolePort(out).on_job_progress(job))
    assert "~40%" in out.getvalue() and "(estimate)" in out.getvalue()
    real = job.model_copy(update={"progress_estimate": None})
    assert "estimate" not in discord_render.status_line(real) + slack_render.status_line(real)
