"""A workspace's budget of message edits (`ChatPort.edits_per_minute`, Slack's `chat.update`
tier): the jobs followed in one workspace share it, so each one's progress message moves more
slowly, while a job in another workspace keeps its own (bot/services/notices.py)."""

from __future__ import annotations

import time
from pathlib import Path

from bot.domain.models import Job, JobStatus, Requester, Surface
from bot.infra.simulator import Simulator, SimulatorConfig
from tests.support import RecordingPort, running_core

SCALE = 10.0  # task seconds per real second: a 60 s task takes 6 s
BUDGET = 120.0  # edits a minute per workspace: 2 a second
BUSY = [Requester(platform="test", workspace="W1", user=f"u{i}") for i in range(4)]
QUIET = Requester(platform="test", workspace="W2", user="solo")


class StampingPort(RecordingPort):
    """Records when each progress update arrived (real seconds)."""

    def __init__(self) -> None:
        super().__init__("test", progress_interval=0.0)
        self.edits_per_minute = BUDGET
        self.stamps: list[tuple[float, Job]] = []

    async def on_job_progress(self, job: Job) -> None:
        self.stamps.append((time.monotonic(), job))
        await super().on_job_progress(job)


async def test_jobs_of_one_workspace_share_its_budget_of_edits(tmp_path: Path) -> None:
    def clock() -> float:
        return time.monotonic() * SCALE

    config = SimulatorConfig(task_seconds=60.0)
    async with Simulator.serve(config, clock=clock, time_scale=SCALE) as sim:
        port = StampingPort()
        async with running_core(tmp_path, sim, ports=[port], public=False) as rc:
            rc.core.tracker.time_scale = SCALE
            rc.core.tracker.notices.time_scale = SCALE
            service = rc.core.service
            busy = [
                await service.submit(who, service.parse(f"a boat number {i}"), Surface())
                for i, who in enumerate(BUSY)
            ]
            quiet = await service.submit(QUIET, service.parse("a lone lighthouse"), Surface())
            for job in [*busy, quiet]:
                await port.wait_for(job.id, "delivered", timeout=60)

    def moving(job_id: str) -> list[float]:
        """When the job's message moved while it rendered (after the first, forced update)."""
        found = [t for t, j in port.stamps if j.id == job_id and j.status == JobStatus.SUBMITTED]
        return found[1:]

    busy_stamps = sorted(t for job in busy for t in moving(job.id))
    assert busy_stamps, "no progress was shown for the busy workspace"
    span = busy_stamps[-1] - busy_stamps[0]
    # Four jobs in W1 share 2 edits a second (one more per job for the moments a job joins
    # or leaves, when the share is recomputed); the fake has no limit of its own.
    assert len(busy_stamps) <= BUDGET / 60 * span + len(BUSY) + 1, (len(busy_stamps), span)
    # W2's one job has the whole of its own budget: its message moves more often than any
    # single W1 job's.
    assert len(moving(quiet.id)) > max(len(moving(job.id)) for job in busy), [
        len(moving(j.id)) for j in [*busy, quiet]
    ]
