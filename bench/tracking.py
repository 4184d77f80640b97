"""Tracking efficiency: status requests per job and delivery lag, adaptive vs fixed pollers.

Runs the real core (tracker, SQLite, HTTP) against the simulator with time scaled up
(`--scale`, task seconds per real second), for several task lengths and progress shapes:
  steady        progress grows evenly, estimated_time exact
  noisy-short   jumps and stalls, estimated_time 50% too short
  noisy-long    jumps and stalls, estimated_time 50% too long
Modes: `adaptive` (polling only), `callbacks` (adaptive + EvoLink callbacks), and fixed
pollers at 3 s and 8 s (what other bots do: read every N s, then download).
Lag = task completed (simulator) → video delivered (port), in task seconds; `detect` is the
part until the tracker saw the completion (the rest is download + delivery, real work whose
milliseconds are multiplied by --scale: ~0.1–0.3 task-s at scale 10, see the callbacks rows).
Submissions are spread over half a task length (see `stagger`).
Jobs come from distinct users so the fair queue (MAX_JOBS_PER_USER) never holds them back.

    python bench/tracking.py [--scale 30] [--jobs 20] [--lengths 30,60,120,300]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.domain.models import Job, JobStatus, Requester, Surface, VideoRequest
from bot.infra.evolink import EvoLinkClient
from bot.infra.simulator import Simulator, SimulatorConfig
from tests.support import RecordingPort, running_core

SHAPES: dict[str, dict[str, object]] = {
    "steady": {"progress_noise": False, "estimate_error": 1.0},
    "noisy-short": {"progress_noise": True, "estimate_error": 0.5},
    "noisy-long": {"progress_noise": True, "estimate_error": 1.5},
}


class StampingPort(RecordingPort):
    """Records when the tracker first reported a job completed (status delivering)."""

    def __init__(self, platform: str, clock: Callable[[], float]) -> None:
        super().__init__(platform)
        self.clock = clock
        self.seen_done: dict[str, float] = {}

    async def on_job_progress(self, job: Job) -> None:
        if job.status == JobStatus.DELIVERING:
            self.seen_done.setdefault(job.id, self.clock())
        await super().on_job_progress(job)


def stagger(length: float, jobs: int) -> float:
    """Task seconds between two submissions: spread over half a task, so completions do not
    all land in the same instant (20 SQLite commits at once would be a queue, not a lag)."""
    return length / 2 / jobs


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def run_core_mode(
    length: float, shape: dict[str, object], scale: float, jobs: int, callbacks: bool
) -> tuple[list[int], list[float], list[float]]:
    clock: Callable[[], float] = lambda: time.monotonic() * scale  # noqa: E731
    config = SimulatorConfig(task_seconds=length, seed=7, unlimited_credits=True, **shape)  # type: ignore[arg-type]
    async with Simulator.serve(config, clock=clock, time_scale=scale) as sim:
        port = StampingPort("bench", clock)
        delivered_at: dict[str, float] = {}

        async def record(job_id: str) -> None:
            await port.wait_for(job_id, "delivered", timeout=length / scale * 4 + 30)
            delivered_at[job_id] = clock()

        with tempfile.TemporaryDirectory() as tmp:
            async with running_core(
                Path(tmp),
                sim,
                public=callbacks,
                start=False,
                user_credits_per_period="100000",
                max_jobs_per_user=100,
                max_jobs_per_workspace=1000,
                ports=[port],
            ) as rc:
                rc.core.tracker.time_scale = scale
                await rc.core.start()
                service = rc.core.service
                ids = []
                for n in range(jobs):
                    who = Requester(platform="bench", workspace="w", user=f"u{n}")
                    job = await service.submit(who, service.parse("bench --duration 8"), Surface())
                    ids.append(job.id)
                    await asyncio.sleep(stagger(length, jobs) / scale)
                await asyncio.gather(*(record(i) for i in ids))
                reads, lags, detects = [], [], []
                for job_id in ids:
                    job = await service.get_job(job_id)
                    task = sim.tasks[job.task_id or ""]
                    reads.append(sum(1 for r in sim.requests if r.path == f"/v1/tasks/{task.id}"))
                    lags.append(delivered_at[job_id] - (task.started + task.seconds))
                    detects.append(port.seen_done[job_id] - (task.started + task.seconds))
    return reads, lags, detects


async def run_fixed_mode(
    length: float, shape: dict[str, object], scale: float, jobs: int, interval: float
) -> tuple[list[int], list[float], list[float]]:
    clock: Callable[[], float] = lambda: time.monotonic() * scale  # noqa: E731
    config = SimulatorConfig(task_seconds=length, seed=7, unlimited_credits=True, **shape)  # type: ignore[arg-type]
    async with (
        Simulator.serve(config, clock=clock, time_scale=scale) as sim,
        EvoLinkClient(sim.base_url, "bench-key") as client,
    ):
        with tempfile.TemporaryDirectory() as tmp:
            request = VideoRequest(
                model="sora-2-preview", prompt="bench", duration=8, aspect_ratio="720x1280"
            )
            phases = random.Random(11)

            async def one(n: int) -> tuple[int, float, float]:
                await asyncio.sleep(n * stagger(length, jobs) / scale)
                task = await client.submit(f"fixed-{n}", request)
                reads = 0
                # A random phase: a task length that is a multiple of the interval would
                # otherwise end right before a read and flatter the fixed poller.
                await asyncio.sleep(interval * phases.random() / scale)
                while True:
                    snap = await client.get_task(task.id)
                    reads += 1
                    if snap.terminal:
                        break
                    await asyncio.sleep(interval / scale)
                sim_task = sim.tasks[task.id]
                seen = clock() - (sim_task.started + sim_task.seconds)
                await client.download(snap.results[0], Path(tmp) / f"{n}.mp4")
                return reads, clock() - (sim_task.started + sim_task.seconds), seen

            results = await asyncio.gather(*(one(n) for n in range(jobs)))
    return [r for r, _, _ in results], [lag for _, lag, _ in results], [d for *_, d in results]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--lengths", default="30,60,120,300")
    args = parser.parse_args()
    lengths = [float(x) for x in args.lengths.split(",")]
    print(f"scale {args.scale:g} task-s per real s, {args.jobs} jobs per cell")
    header = (
        f"{'length':>6} {'progress':<12} {'mode':<10} {'reads/job':>9} {'max':>4} "
        f"{'lag p50':>8} {'lag p95':>8} {'detect p95':>10}"
    )
    print(header)
    print("-" * len(header))
    for length in lengths:
        for shape_name, shape in SHAPES.items():
            cells = await asyncio.gather(
                run_core_mode(length, shape, args.scale, args.jobs, callbacks=False),
                run_core_mode(length, shape, args.scale, args.jobs, callbacks=True),
                run_fixed_mode(length, shape, args.scale, args.jobs, 3.0),
                run_fixed_mode(length, shape, args.scale, args.jobs, 8.0),
            )
            for mode, (reads, lags, detects) in zip(
                ("adaptive", "callbacks", "fixed-3s", "fixed-8s"), cells, strict=True
            ):
                print(
                    f"{length:>6.0f} {shape_name:<12} {mode:<10} {statistics.mean(reads):>9.1f} "
                    f"{max(reads):>4} {statistics.median(lags):>7.2f}s {p95(lags):>7.2f}s "
                    f"{p95(detects):>9.2f}s"
                )


if __name__ == "__main__":
    asyncio.run(main())
