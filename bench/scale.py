"""Scale: thousands of jobs in flight in one process — resident memory, event-loop lag, delivery.

    python bench/scale.py [--jobs 2000] [--task-seconds 60] [--scale 1] [--callbacks]

One process, real code paths: the core (tracker, fair queue, SQLite file, media streaming to
MEDIA_DIR, web server) and the EvoLink simulator on 127.0.0.1; the chat platform is a
counting port (a real adapter would add its own client's memory). Jobs come from 4
workspaces × 25 users, with MAX_JOBS_PER_USER/WORKSPACE raised so all of them are in flight
at once. Measured throughout: VmRSS from /proc/self/status every 0.25 s, and event-loop lag
as the overshoot of `asyncio.sleep(0.01)` in a task of its own. The run ends when every job
is delivered (or after a bounded wait, which is then reported).
Targets: peak RSS ≤ 250 MB, loop lag p99 ≤ 50 ms, all delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.models import Balance, DeliveredVideo, Job, Requester, Surface
from bot.infra.simulator import Simulator, SimulatorConfig
from tests.support import running_core

WORKSPACES = 4
USERS_PER_WORKSPACE = 25


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


class CountingPort:
    """A ChatPort that only counts (keeps no per-event objects, unlike RecordingPort)."""

    platform = "bench"
    progress_interval = 5.0  # as a chat adapter would throttle edits
    edits_per_minute: float | None = None

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.done = asyncio.Event()
        self.expected = 0

    async def on_job_progress(self, job: Job) -> None:
        self.counts["progress"] += 1

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        self.counts["delivered"] += 1
        self._check()

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        self.counts["failed"] += 1
        self._check()

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        self.counts["cancelled"] += 1
        self._check()

    def _check(self) -> None:
        finished = self.counts["delivered"] + self.counts["failed"] + self.counts["cancelled"]
        if finished >= self.expected:
            self.done.set()


class Probe:
    """Samples RSS and loop lag until stopped."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.rss: list[float] = []
        self.in_flight: list[int] = []

    async def loop_lag(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - start - 0.01) * 1000)

    async def memory(self, tracker_in_flight: object) -> None:
        while True:
            self.rss.append(rss_mb())
            self.in_flight.append(int(tracker_in_flight.in_flight))  # type: ignore[attr-defined]
            await asyncio.sleep(0.25)


async def run(
    jobs: int, task_seconds: float, scale: float, timeout: float, callbacks: bool, queued: bool
) -> None:
    gc.collect()
    baseline = rss_mb()
    probe = Probe()
    port = CountingPort()
    port.expected = jobs
    clock = (lambda: time.monotonic() * scale) if scale != 1 else time.monotonic
    config = SimulatorConfig(
        task_seconds=task_seconds, progress_noise=True, seed=1, unlimited_credits=True
    )
    started = time.perf_counter()
    async with Simulator.serve(config, clock=clock, time_scale=scale) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            async with running_core(
                Path(tmp),
                sim,
                start=False,
                public=callbacks,
                user_credits_per_period="1000000",
                max_jobs_per_user=100 if not queued else 2,
                max_jobs_per_workspace=1000 if not queued else 8,
                ports=[port],
            ) as rc:
                rc.core.tracker.time_scale = scale
                await rc.core.start()
                ready = rss_mb()
                tasks = [
                    asyncio.create_task(probe.loop_lag()),
                    asyncio.create_task(probe.memory(rc.core.tracker)),
                ]
                service = rc.core.service
                request = service.parse("a paper boat on a rainy street --duration 8")
                for n in range(jobs):
                    who = Requester(
                        platform="bench",
                        workspace=f"w{n % WORKSPACES}",
                        user=f"u{(n // WORKSPACES) % USERS_PER_WORKSPACE}",
                    )
                    await service.submit(who, request, Surface())
                submitted = time.perf_counter() - started
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(port.done.wait(), timeout)
                elapsed = time.perf_counter() - started
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                reads = sim.counts["task"]
                downloads = sim.counts["download"]
                row = await rc.core.store.fetchone(
                    "SELECT COUNT(*) AS n FROM jobs WHERE status = 'delivered'"
                )
                delivered_in_store = int(row["n"]) if row else 0
    lags = probe.lags_ms
    print(
        f"{jobs} jobs ({WORKSPACES} workspaces x {USERS_PER_WORKSPACE} users), "
        f"{task_seconds:g} s noisy tasks, time scale {scale:g}, "
        f"{'callbacks + polling' if callbacks else 'polling only'}"
        f"{', fair queue at default limits 2/8' if queued else ''}; "
        f"submitted in {submitted:.1f} s, "
        f"all done after {elapsed:.1f} s"
    )
    print(
        f"EvoLink: {sim.counts['submit']} submits, {reads} status reads "
        f"({reads / jobs:.1f}/job), {downloads} downloads"
    )
    print(f"{'measure':<34} {'value':>12}  target")
    print("-" * 60)
    print(f"{'peak jobs in flight (tracker)':<34} {max(probe.in_flight):>12}")
    print(f"{'RSS before the core (MB)':<34} {baseline:>12.1f}")
    print(f"{'RSS core started, idle (MB)':<34} {ready:>12.1f}")
    print(f"{'RSS peak (MB)':<34} {max(probe.rss):>12.1f}  <= 250")
    print(f"{'loop lag p50 (ms)':<34} {percentile(lags, 50):>12.2f}")
    print(f"{'loop lag p99 (ms)':<34} {percentile(lags, 99):>12.2f}  <= 50")
    print(f"{'loop lag max (ms)':<34} {max(lags):>12.2f}")
    print(f"{'loop lag mean (ms)':<34} {statistics.fmean(lags):>12.2f}")
    delivered = f"{port.counts['delivered']} / {delivered_in_store}"
    print(f"{'delivered (port / store)':<34} {delivered:>12}  = {jobs}")
    failed = f"{port.counts['failed']} / {port.counts['cancelled']}"
    print(f"{'failed / cancelled':<34} {failed:>12}  = 0")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--task-seconds", type=float, default=60.0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument(
        "--queued",
        action="store_true",
        help="default MAX_JOBS_PER_USER/WORKSPACE (2/8): most jobs wait in the fair queue",
    )
    parser.add_argument(
        "--callbacks", action="store_true", help="EvoLink callbacks on (default: polling only)"
    )
    args = parser.parse_args()
    asyncio.run(
        run(args.jobs, args.task_seconds, args.scale, args.timeout, args.callbacks, args.queued)
    )
