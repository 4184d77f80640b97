"""The tracker: drives every unfinished job to a terminal state, across restarts.

One asyncio task per open job, found again from the store at start-up (`resume`):
    pending     → submit to EvoLink (Idempotency-Key = job id, so a re-submit after a crash
                  returns the same task) → submitted
    submitted   → read the task adaptively (bot.domain.polling); a callback only wakes the reader,
                  it never decides anything → delivering | failed
    delivering  → download once (streamed to MEDIA_DIR, skipped when the file is already
                  there) → hand it to the platform port → record delivered (+ capture)

Invariants:
- The tracker acts only on what `GET /v1/tasks/{id}` says, never on a callback body.
- Delivery is exactly once: each attempt is recorded (`delivery_attempts`) before the port is
  called, and the delivery right after it returns; a retry after a crash in between carries
  `delivery_attempts > 1`, and the port checks the platform before posting again.
- A failure or cancel is recorded, then told once (bot/services/notices.py); `resume` tells whoever
  a
  crash left untold, and a platform whose port registers later is swept when it does.
- Progress reaches the port only when it changed, and not more often than the port allows.
- Failures the user can act on (content policy, bad input) fail at once; retryable ones
  (429/502/503/network) are retried with backoff; a job that cannot be submitted within
  SUBMIT_GIVE_UP seconds fails with its credits returned.
- A job is sent only after `JobBook.begin_submit` claimed it (pending, not cancelled): a cancel
  that wins first means no submit; a submit claimed first means the cancel is refused.
- A finished task is charged what EvoLink billed, a failed one what EvoLink kept (the job book).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

from bot.domain.errors import ProviderError, ResultExpired, TaskFailed, TaskNotFound
from bot.domain.models import Job, JobStatus
from bot.domain.polling import PollState, next_delay
from bot.infra.evolink import EvoLinkClient, TaskSnapshot
from bot.infra.logs import job_context
from bot.infra.media import MediaHost
from bot.services.delivery import VideoFetcher
from bot.services.dispatcher import Dispatcher
from bot.services.jobs import JobBook
from bot.services.notices import Notices
from bot.services.port import ChatPort

log = logging.getLogger(__name__)

SUBMIT_GIVE_UP = 15 * 60.0
DELIVERY_RETRY_MAX = 60.0
DISK_RETRIES = 3  # failed saves before falling back to EvoLink's own link
UNTOLD_LOOKBACK = dt.timedelta(hours=24)


class Tracker:
    def __init__(
        self,
        book: JobBook,
        evolink: EvoLinkClient,
        media: MediaHost,
        *,
        callback_url: str | None,
        time_scale: float = 1.0,
        max_per_user: int = 2,
        max_per_workspace: int = 8,
    ) -> None:
        self.book = book
        self.evolink = evolink
        self.media = media
        self.callback_url = callback_url
        # Benchmarks run task time faster than real time; polling decisions use task seconds.
        self.time_scale = time_scale
        self.ports: dict[str, ChatPort] = {}
        self._port_added = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._background_tasks: dict[str, asyncio.Task[None]] = {}
        self._dispatch_task: asyncio.Task[None] | None = None
        self._dispatch_again = False
        self._stopping = False
        self._resumed = False
        self._just_submitted: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.notices = Notices(book, self.ports, time_scale=time_scale)
        self.fetcher = VideoFetcher(book, evolink, media, self.stats)
        self.dispatcher = Dispatcher(
            book,
            self.notices,
            self.follow,
            max_per_user=max_per_user,
            max_per_workspace=max_per_workspace,
        )
        #: Called after a job's end is recorded (delivered and captured, or failed).
        self.on_finished: list[Callable[[Job], Awaitable[None]]] = []

    # -- wiring ------------------------------------------------------------------------------

    def register_port(self, port: ChatPort) -> None:
        self.ports[port.platform] = port
        self._port_added.set()
        if self._resumed and not self._stopping:
            # A platform that connects after the start (Discord logs in later) is told the
            # endings its users were not told before the crash.
            self._background(self._sweep_untold(port.platform), f"sweep-{port.platform}")

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def follow(self, job_id: str) -> None:
        """Start driving a job (no-op if it is already followed, or while stopping)."""
        if job_id in self._tasks or self._stopping:
            return
        task = asyncio.create_task(self._follow(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._forget(job_id))

    def _forget(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._just_submitted.discard(job_id)
        self._wake.pop(job_id, None)
        self.notices.forget(job_id)

    def wake(self, job_id: str) -> None:
        """Look at the job now (a callback arrived, or it was cancelled)."""
        if job_id in self._tasks:
            # Created if need be: a callback that arrives between the submit and the first
            # wait must not be lost (it would cost a whole polling interval).
            self._wake_event(job_id).set()

    async def resume(self) -> int:
        # The endings a crash left untold are read first, before any job is followed: a job
        # that ends after this read is told by whoever ended it, never by this sweep too.
        await self._sweep_untold(None)
        self._resumed = True
        jobs = await self.book.unfinished_jobs()
        for job in jobs:
            if not (job.status == JobStatus.PENDING and job.queued):
                self.follow(job.id)
        if jobs:
            log.info("resuming %d unfinished job(s)", len(jobs))
        await self.dispatch()
        return len(jobs)

    async def _sweep_untold(self, platform: str | None) -> None:
        """Tell the endings a crash left untold (of one platform, or all that have a port)."""
        since = dt.datetime.now(dt.UTC) - UNTOLD_LOOKBACK
        for ended in await self.book.untold_endings(since):
            if platform is not None and ended.requester.platform != platform:
                continue
            if ended.requester.platform not in self.ports:
                continue  # told when that platform's port registers
            if self.notices.claim(ended.id):  # claimed now, synchronously: no second teller
                self._background(self.notices.tell_claimed(ended.id), f"tell-{ended.id}")

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background_tasks[name] = task
        task.add_done_callback(lambda _t: self._background_tasks.pop(name, None))

    # -- the fair queue ----------------------------------------------------------------------

    def dispatch_soon(self) -> None:
        """Start waiting jobs that now fit (a job was accepted, or a slot was freed)."""
        if self._stopping:
            return
        if self._dispatch_task is not None and not self._dispatch_task.done():
            self._dispatch_again = True
            return
        self._dispatch_task = asyncio.create_task(self._dispatch_loop(), name="dispatch")

    async def _dispatch_loop(self) -> None:
        while True:
            self._dispatch_again = False
            try:
                await self.dispatch()
            except Exception:
                log.exception("dispatching the queue failed")
            if not self._dispatch_again:
                return

    async def dispatch(self) -> None:
        """Start the waiting jobs that fit now (bot/services/dispatcher.py)."""
        await self.dispatcher.dispatch()

    async def stop(self) -> None:
        # No new work from here on; the dispatcher first, so it cannot start jobs meanwhile.
        self._stopping = True
        if self._dispatch_task is not None:
            self._dispatch_task.cancel()
            await asyncio.gather(self._dispatch_task, return_exceptions=True)
        tasks = [
            *self._tasks.values(),
            *self._background_tasks.values(),
            *self.notices.flushes.values(),
            *self.notices.estimates.values(),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no job is followed (tests, `demo -c`)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # -- the loop ----------------------------------------------------------------------------

    async def _follow(self, job_id: str) -> None:
        with job_context(job_id):
            await self._follow_logged(job_id)

    async def _follow_logged(self, job_id: str) -> None:
        failures = 0
        while True:
            try:
                await self._drive(job_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug or a store hiccup must not strand the job: log it and try again later.
                failures += 1
                log.exception("job %s: unexpected error (attempt %d)", job_id, failures)
                await asyncio.sleep(min(2.0**failures, DELIVERY_RETRY_MAX))

    async def _drive(self, job_id: str) -> None:
        while True:
            job = await self.book.job(job_id)
            if job.status.terminal:
                return
            if job.status == JobStatus.PENDING:
                if job.queued:
                    return  # waiting for a slot; the dispatcher follows it when one is free
                await self._submit(job)
            elif job.status == JobStatus.SUBMITTED:
                await self._watch(job)
            else:
                await self._deliver(job)

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
                snapshot = await self.evolink.get_task(job.task_id)
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
