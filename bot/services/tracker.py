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
- Replicas (bot/services/job_leases.py): the tracker follows ONLY the jobs whose lease this
  replica holds — claimed at start and by the lease loop (free or expired: another replica
  died), or taken by the dispatcher when it releases a job from the queue — and drops a job
  whose lease it lost. The job book fences its writes with the lease (`LeaseLost` ends the
  follow). Status reads go through one TaskReader (batched `get_tasks`).
- `wake(job_id)` reaches the holder wherever it runs: a job followed here is woken at once;
  otherwise the word goes out on the store's wake-ups (PostgreSQL: NOTIFY) and the replica
  that follows it wakes it. Only the holder edits a job's progress message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.domain.models import Job, JobStatus
from bot.infra.evolink import EvoLinkClient
from bot.infra.logs import job_context
from bot.infra.media import MediaHost
from bot.infra.store.engine import Wakeups
from bot.services.delivery import VideoFetcher
from bot.services.dispatcher import Dispatcher
from bot.services.job_leases import LeaseKeeper
from bot.services.jobs import JobBook, LeaseLost
from bot.services.notices import Notices
from bot.services.port import ChatPort
from bot.services.task_reader import TaskReader
from bot.services.tracker_steps import DELIVERY_RETRY_MAX, TrackerSteps

log = logging.getLogger(__name__)

UNTOLD_LOOKBACK = dt.timedelta(hours=24)
WAKE_CHANNEL = "sora_wake"  # payload: a job id


class Tracker(TrackerSteps):
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
        lease_seconds: float = 30.0,
        wakeups: Wakeups | None = None,
        takeover: bool = True,
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
        self._followed_at: dict[str, float] = {}  # monotonic time each follow began
        self._wake: dict[str, asyncio.Event] = {}
        self._background_tasks: dict[str, asyncio.Task[None]] = {}
        self._dispatch_task: asyncio.Task[None] | None = None
        self._dispatch_again = False
        self._stopping = False
        self._stopped = False
        self._resumed = False
        self._just_submitted: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.notices = Notices(
            book, self.ports, time_scale=time_scale, replicas=lambda: self.leases.live
        )
        self.fetcher = VideoFetcher(book, evolink, media, self.stats)
        self.reader = TaskReader(evolink)
        self.wakeups = wakeups
        self.leases = LeaseKeeper(
            book,
            lease_seconds,
            follow=self.follow,
            drop=self.unfollow,
            followed=lambda: self._followed_at,
            takeover=takeover,
        )
        self.dispatcher = Dispatcher(
            book,
            self.notices,
            self._started,
            max_per_user=max_per_user,
            max_per_workspace=max_per_workspace,
            lease_until=self.leases.until if book.replica is not None else None,
            share_of=self.leases.share_of if book.replica is not None else None,
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
        """Start driving a job this replica holds the lease of (no-op if it is already
        followed, or while stopping)."""
        if job_id in self._tasks or self._stopping:
            return
        task = asyncio.create_task(self._follow(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        self._followed_at[job_id] = time.monotonic()
        task.add_done_callback(lambda _t: self._forget(job_id, task))

    def unfollow(self, job_id: str) -> None:
        """Stop driving a job (its lease is another replica's, or could not be renewed)."""
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            self._forget(job_id, task)

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is not task:
            return  # followed again meanwhile
        self._tasks.pop(job_id, None)
        self._followed_at.pop(job_id, None)
        self.leases.held.discard(job_id)  # ended (its lease cleared), lost or dropped
        self._just_submitted.discard(job_id)
        self._wake.pop(job_id, None)
        self.notices.forget(job_id)

    def _started(self, job_id: str) -> None:
        """The dispatcher released (and leased) a job: follow it."""
        self.leases.note(job_id)
        self.follow(job_id)

    def wake(self, job_id: str) -> None:
        """Look at the job now (a callback arrived, or it was cancelled), wherever it is
        followed: here at once, on another replica through the wake-ups."""
        if job_id in self._tasks:
            self._woken(job_id)
        elif self.wakeups is not None and not self._stopping:
            self._background(self._notify(job_id), f"wake-{job_id}")

    def _woken(self, job_id: str) -> None:
        if job_id in self._tasks:
            # Created if need be: a callback that arrives between the submit and the first
            # wait must not be lost (it would cost a whole polling interval).
            self._wake_event(job_id).set()

    async def _notify(self, job_id: str) -> None:
        assert self.wakeups is not None
        try:
            await self.wakeups.notify(WAKE_CHANNEL, job_id)
        except Exception as exc:  # a hint only: the holder's polling still finds the change
            log.warning("job %s: could not pass the wake-up on: %s", job_id, exc)

    async def resume(self) -> int:
        # The endings a crash left untold are read first, before any job is followed: a job
        # that ends after this read is told by whoever ended it, never by this sweep too.
        await self._sweep_untold(None)
        self._resumed = True
        if self.wakeups is not None:
            await self.wakeups.listen(WAKE_CHANNEL, self._woken)
        if self.book.replica is not None:
            await self.leases.start()  # claims the free and expired open jobs, follows them
        else:
            for job in await self.book.unfinished_jobs():
                if not (job.status == JobStatus.PENDING and job.queued):
                    self.follow(job.id)
        if self._tasks:
            log.info("resuming %d unfinished job(s)", len(self._tasks))
        await self.dispatch()
        return len(self._tasks)

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

    async def stop(self, *, release: bool = True) -> None:
        """Stop following; `release` gives the job leases back (a clean stop: another
        replica, or the next start, takes the jobs over at once). Without it the leases run
        out by themselves (what a replica that died leaves)."""
        if self._stopped:
            return
        self._stopped = True
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
        await self.reader.close()
        # After the follow tasks ended: nothing here acts on a job once its lease is given back.
        await self.leases.stop(release=release)

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
            except LeaseLost as lost:
                log.warning("job %s: no longer ours (%s); another replica follows it", job_id, lost)
                return
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
