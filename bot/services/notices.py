"""What the tracker tells users through the platform ports: progress and bad endings.

Invariants:
- A failure or cancel is told once. Within a process a job being told is not told again at
  the same time (`_telling`), and a job whose telling was recorded (`told_at`) is never told
  again. Each attempt is counted in SQL before the port is called (`Job.tell_attempts`), so
  after a crash between the port's post and its record the retelling carries
  `tell_attempts > 1` and the port checks the platform for its earlier notice first: exactly
  once wherever the platform lets the port look (bot/services/port.py).
- Only the replica that follows a job (holds its lease) pushes its progress: `forget`
  stops a job's estimate and pending update when it is no longer followed here.
- Progress reaches a port only when it changed, and not more often than the job's interval:
  the port's `progress_interval`, or longer when the port has a per-workspace budget of
  edits (`ChatPort.edits_per_minute`: Slack's `chat.update` tier) — then the jobs this
  process follows in that workspace share this replica's part of it (the budget divided by
  the live replicas), so a busy workspace's messages move more slowly instead of drawing
  429s that would hold up the tracker. The newest value is shown once the interval has
  passed; state changes (`force`) are never held back.
- Between EvoLink's reads a followed task's progress moves as an estimate
  (bot/domain/progress.py, from `estimated_time` and the time since the submit on the
  tracker's clock): `estimating` pushes it at the port's interval (at least ESTIMATE_TICK),
  through the same throttle, as `Job.progress_estimate`; every update carries the current
  estimate, so the shown figure never goes back when a read reports less.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from bot.domain.models import Job, JobStatus
from bot.domain.progress import estimate_progress
from bot.services.jobs import JobBook
from bot.services.port import ChatPort

log = logging.getLogger(__name__)


ESTIMATE_TICK = 0.5  # real seconds: the fastest an estimate is recomputed


class Notices:
    def __init__(
        self,
        book: JobBook,
        ports: Mapping[str, ChatPort],
        *,
        time_scale: float = 1.0,
        replicas: Callable[[], int] = lambda: 1,
    ) -> None:
        self.book = book
        self.ports = ports
        self.time_scale = time_scale  # task seconds per real second (the tracker's clock)
        self._replicas = replicas  # live replicas sharing a workspace's budget of edits
        #: (platform, workspace) → jobs whose estimate this process moves (it follows them)
        self._followed: Counter[tuple[str, str]] = Counter()
        self._telling: set[str] = set()  # jobs whose ending is being told right now
        self._last_progress: dict[str, tuple[float, int | None, int, str]] = {}
        self.flushes: dict[str, asyncio.Task[None]] = {}
        self.estimates: dict[str, asyncio.Task[None]] = {}

    # -- endings -----------------------------------------------------------------------------

    def claim(self, job_id: str) -> bool:
        """Take the telling of this job's ending (False: someone in this process has it)."""
        if job_id in self._telling:
            return False
        self._telling.add(job_id)
        return True

    async def tell_ending(self, job_id: str) -> None:
        """Tell the user how the job ended, unless it is being (or was) told already."""
        if self.claim(job_id):
            await self.tell_claimed(job_id)

    async def tell_claimed(self, job_id: str) -> None:
        """Tell a job claimed with `claim`, and release the claim."""
        try:
            job = await self.book.job(job_id)
            port = self.ports.get(job.requester.platform)
            if port is None:
                return  # told by the process that runs this platform, at its start
            attempt = await self.book.begin_telling(job_id)
            if attempt is None:
                return  # already told, or not ended
            try:
                balance = await self.book.ledger.balance(attempt.requester)
                if attempt.status == JobStatus.CANCELLED:
                    await port.on_job_cancelled(attempt, balance)
                else:
                    reason = attempt.error or "the video failed"
                    await port.on_job_failed(attempt, reason, balance)
            except Exception:
                log.exception("job %s: could not tell the user how it ended", job_id)
                return
            await self.book.mark_told(job_id)
        finally:
            self._telling.discard(job_id)

    # -- progress ----------------------------------------------------------------------------

    def forget(self, job_id: str) -> None:
        """The job is no longer followed here (ended, or its lease went to another replica):
        its moving estimate and a pending progress update stop (only the holder edits)."""
        self._last_progress.pop(job_id, None)
        for pending in (self.estimates.pop(job_id, None), self.flushes.pop(job_id, None)):
            if pending is not None and pending is not asyncio.current_task():
                pending.cancel()

    def with_estimate(self, job: Job) -> Job:
        """The job with its current progress estimate (`Job.progress_estimate`), if any."""
        if job.status != JobStatus.SUBMITTED or job.submitted_at is None:
            return job
        elapsed = (dt.datetime.now(dt.UTC) - job.submitted_at).total_seconds() * self.time_scale
        guess = estimate_progress(job.progress, elapsed, job.estimated_seconds)
        return (
            job
            if guess == job.progress_estimate
            else job.model_copy(update={"progress_estimate": guess})
        )

    def estimating(self, job_id: str) -> None:
        """Push the moving estimate of a submitted job between reads, until it is no longer
        submitted (the tracker calls this when it starts following the task)."""
        if job_id in self.estimates:
            return
        self.estimates[job_id] = asyncio.create_task(
            self._estimate_loop(job_id), name=f"estimate-{job_id}"
        )

    def interval(self, job: Job, port: ChatPort) -> float:
        """Seconds between two progress updates of `job` (the module docstring)."""
        budget = port.edits_per_minute
        if budget is None:
            return port.progress_interval
        here = max(self._followed[(job.requester.platform, job.requester.workspace)], 1)
        return max(port.progress_interval, here * 60.0 * max(self._replicas(), 1) / budget)

    async def _estimate_loop(self, job_id: str) -> None:
        where: tuple[str, str] | None = None
        try:
            job = await self.book.job(job_id)  # then one read per tick, after its sleep
            where = (job.requester.platform, job.requester.workspace)
            self._followed[where] += 1
            while (
                job.status == JobStatus.SUBMITTED
                and (port := self.ports.get(job.requester.platform)) is not None
            ):
                await asyncio.sleep(max(self.interval(job, port), ESTIMATE_TICK))
                job = await self.book.job(job_id)
                if job.status == JobStatus.SUBMITTED:
                    await self.progress(job)
        except Exception:
            log.exception("job %s: progress estimate failed", job_id)
        finally:
            self.estimates.pop(job_id, None)
            if where is not None:
                self._followed[where] -= 1
                if self._followed[where] <= 0:
                    del self._followed[where]

    async def progress(self, job: Job, *, force: bool = False) -> None:
        port = self.ports.get(job.requester.platform)
        if port is None:
            return
        job = self.with_estimate(job)
        now = time.monotonic()  # progress_interval is in real seconds
        last = self._last_progress.get(job.id)
        if last is not None and not force:
            last_at, last_estimate, last_value, last_status = last
            if (last_estimate, last_value, last_status) == (
                job.progress_estimate,
                job.progress,
                job.status,
            ):
                return
            interval = self.interval(job, port)
            if now - last_at < interval:
                # Too soon: show the newest value once the interval has passed.
                self._flush_later(job.id, interval - (now - last_at))
                return
        self._last_progress[job.id] = (now, job.progress_estimate, job.progress, job.status)
        try:
            await port.on_job_progress(job)
        except Exception:
            log.exception("job %s: progress update failed", job.id)

    def _flush_later(self, job_id: str, delay: float) -> None:
        if job_id in self.flushes:
            return

        async def flush() -> None:
            await asyncio.sleep(delay)
            self.flushes.pop(job_id, None)
            job = await self.book.job(job_id)
            if job.status == JobStatus.SUBMITTED:
                await self.progress(job)

        self.flushes[job_id] = asyncio.create_task(flush(), name=f"progress-{job_id}")
