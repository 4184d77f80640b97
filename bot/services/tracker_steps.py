"""The tracker's steps for one job (a part of bot/services/tracker.py, split for length):
submit, watch, deliver, and the endings. `Tracker` inherits them; the invariants are the
tracker's (its module docstring): a submit only after `begin_submit`, status from EvoLink's
own reads (through the batch reader), each delivery attempt recorded before the port is
called, an ending recorded then told once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal

from bot.domain.errors import ProviderError, ResultExpired, TaskFailed, TaskNotFound
from bot.domain.models import Job, JobStatus
from bot.domain.polling import PollState, next_delay
from bot.infra.evolink import EvoLinkClient, TaskSnapshot
from bot.services.delivery import VideoFetcher
from bot.services.jobs import JobBook
from bot.services.notices import Notices
from bot.services.port import ChatPort
from bot.services.task_reader import TaskReader

log = logging.getLogger("bot.services.tracker")

SUBMIT_GIVE_UP = 15 * 60.0
DELIVERY_RETRY_MAX = 60.0
DISK_RETRIES = 3  # failed saves before falling back to EvoLink's own link


class TrackerSteps(ABC):
    book: JobBook
    evolink: EvoLinkClient
    reader: TaskReader
    fetcher: VideoFetcher
    notices: Notices
    ports: dict[str, ChatPort]
    stats: Counter[str]
    callback_url: str | None
    time_scale: float
    on_finished: list[Callable[[Job], Awaitable[None]]]
    _port_added: asyncio.Event
    _wake: dict[str, asyncio.Event]
    _just_submitted: set[str]

    @abstractmethod
    def dispatch_soon(self) -> None:
        """Run the fair queue soon (the tracker's own: bot/services/tracker.py)."""

    async def _submit(self, job: Job) -> None:
        attempt = 0
        while True:
            # The claim that makes the job uncancellable, taken before every attempt: a job
            # cancelled meanwhile is never sent (and its cancel, once this wins, is refused).
            if not await self.book.begin_submit(job.id):
                return
            try:
                snapshot = await self.evolink.submit(job.id, job.request, self.callback_url)
                break
            except ProviderError as exc:
                attempt += 1
                age = (dt.datetime.now(dt.UTC) - job.created_at).total_seconds()
                if not exc.retryable or age > SUBMIT_GIVE_UP:
                    log.warning("job %s: submit refused: %s", job.id, exc.code or exc.status)
                    await self._fail(job, exc.code, exc.message)
                    return
                if exc.status == 429:  # refused before EvoLink took anything: cancellable
                    await self.book.submit_not_taken(job.id)
                delay = max(exc.retry_after or 0.0, min(2.0**attempt, DELIVERY_RETRY_MAX))
                log.info("job %s: submit failed (%s), retrying in %.0fs", job.id, exc.code, delay)
                if await self._sleep_or_wake(job.id, delay):
                    current = await self.book.job(job.id)
                    if current.status != JobStatus.PENDING:
                        return
        self.stats["submitted"] += 1
        if await self.book.mark_submitted(job.id, snapshot.id, snapshot.estimated_time):
            log.info("job %s: submitted as task %s", job.id, snapshot.id)
            if not snapshot.terminal:
                self._just_submitted.add(job.id)
            await self.notices.progress(await self.book.job(job.id), force=True)

    async def _watch(self, job: Job) -> None:
        assert job.task_id is not None
        now = self.clock()
        since = 0.0
        if job.submitted_at is not None:
            since = max((dt.datetime.now(dt.UTC) - job.submitted_at).total_seconds(), 0.0)
            since *= self.time_scale
        state = PollState(started_at=now - since, estimated_time=job.estimated_seconds)
        if job.progress:
            state.observe(now, job.progress)
        self.notices.estimating(job.id)  # the shown progress moves between reads
        callbacks = self.callback_url is not None
        if job.id in self._just_submitted:
            # The submit answer was the first status read: wait before the next one.
            self._just_submitted.discard(job.id)
            await self._sleep_or_wake(job.id, next_delay(state, self.clock(), callbacks=callbacks))
        while True:
            retry_after: float | None = None
            self._wake_event(job.id).clear()
            try:
                snapshot = await self.reader.read(job.task_id)
                self.stats["status_reads"] += 1
            except TaskNotFound as exc:
                self.stats["status_errors"] += 1
                await self._fail(job, exc.code, "EvoLink no longer knows this task.")
                return
            except ProviderError as exc:
                self.stats["status_errors"] += 1
                state.errors += 1
                retry_after = exc.retry_after
            else:
                done = await self._on_snapshot(job, snapshot, state)
                if done:
                    return
            delay = next_delay(state, self.clock(), callbacks=callbacks, retry_after=retry_after)
            log.debug("job %s: next status read in %.1fs (%s)", job.id, delay, state)
            await self._sleep_or_wake(job.id, delay)
            job = await self.book.job(job.id)
            if job.status != JobStatus.SUBMITTED:
                return

    async def _on_snapshot(self, job: Job, snap: TaskSnapshot, state: PollState) -> bool:
        if snap.estimated_time and not state.estimated_time:
            state.estimated_time = snap.estimated_time
        try:
            snap.raise_for_failure()
        except TaskFailed as failure:
            await self._fail(job, failure.code, failure.message, kept=snap.kept)
            return True
        if snap.status == "completed":
            if await self.book.mark_delivering(job.id, snap.results[0], snap.credits_used):
                log.info("job %s: task completed", job.id)
                self.dispatch_soon()
                await self.notices.progress(await self.book.job(job.id), force=True)
            return True
        state.observe(self.clock(), snap.progress)
        if snap.progress != job.progress:
            await self.book.record_progress(job.id, snap.progress)
            job = job.model_copy(update={"progress": snap.progress})
            await self.notices.progress(job)
        return False

    async def _deliver(self, job: Job) -> None:
        attempt = 0
        while True:
            port = self.ports.get(job.requester.platform)
            if port is None:
                # The platform is not running in this process; its job waits for it.
                self._port_added.clear()
                await _wait_or_timeout(self._port_added.wait(), 30.0)
                continue
            try:
                video = await self.fetcher.fetch(job)
            except ResultExpired:
                await self._fail(
                    job,
                    "result_expired",
                    "The finished video could no longer be downloaded from EvoLink.",
                )
                return
            except ProviderError as exc:
                attempt += 1
                await asyncio.sleep(
                    max(exc.retry_after or 0, min(2.0**attempt, DELIVERY_RETRY_MAX))
                )
                continue
            except OSError as exc:
                attempt += 1
                log.error("job %s: cannot save the video to MEDIA_DIR: %s", job.id, exc.strerror)
                if attempt < DISK_RETRIES:
                    await asyncio.sleep(float(attempt))
                    continue
                # The disk stays full: give the user EvoLink's own link rather than nothing.
                video = self.fetcher.link_only(job)
            await self.book.note_delivery_attempt(job.id)
            job = await self.book.job(job.id)
            after = await self.book.ledger.balance_once_captured(job)
            try:
                await port.on_job_delivered(job, video, after)
            except asyncio.CancelledError:
                raise
            except Exception:
                attempt += 1
                log.exception(
                    "job %s: the platform did not take the video (attempt %d)", job.id, attempt
                )
                await asyncio.sleep(min(2.0**attempt, DELIVERY_RETRY_MAX))
                continue
            if await self.book.finish_delivered(job.id):
                self.stats["delivered"] += 1
                log.info("job %s: delivered", job.id)
                await self._finished(await self.book.job(job.id))
            return

    # -- endings and events ------------------------------------------------------------------

    async def _fail(
        self, job: Job, code: str | None, reason: str, *, kept: Decimal | None = None
    ) -> None:
        """Fail the job; `kept` is what EvoLink reports it kept for the task (captured)."""
        if not await self.book.finish_failed(job.id, code, reason, kept):
            return
        self.stats["failed"] += 1
        self.dispatch_soon()
        log.info("job %s: failed (%s)", job.id, code or "no code")
        await self.tell_ending(job.id)
        await self._finished(await self.book.job(job.id))

    async def tell_ending(self, job_id: str) -> None:
        """Tell the user a job failed or was cancelled, once (bot/services/notices.py)."""
        await self.notices.tell_ending(job_id)

    async def _finished(self, job: Job) -> None:
        for hook in self.on_finished:
            try:
                await hook(job)
            except Exception:
                log.exception("job %s: a finish hook failed", job.id)

    def _wake_event(self, job_id: str) -> asyncio.Event:
        return self._wake.setdefault(job_id, asyncio.Event())

    async def _sleep_or_wake(self, job_id: str, delay: float) -> bool:
        """Sleep `delay` task seconds or until woken; True if woken."""
        return await _wait_or_timeout(self._wake_event(job_id).wait(), delay / self.time_scale)

    def clock(self) -> float:
        """Task seconds (real seconds × time_scale)."""
        return time.monotonic() * self.time_scale


async def _wait_or_timeout(awaitable: Awaitable[object], timeout: float) -> bool:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
    # lands as the awaited thing finishes, and the tracker would then never stop.
    try:
        async with asyncio.timeout(timeout):
            await awaitable
    except TimeoutError:
        return False
    return True
