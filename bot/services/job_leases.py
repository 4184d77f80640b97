"""Job leases: which open jobs this replica follows when several share one database.

    keeper = LeaseKeeper(book, lease_seconds, follow=tracker.follow, drop=tracker.unfollow,
                         followed=tracker.followed_since)
    await keeper.start()      # the first claim (resume), then a tick every LEASE_SECONDS / 6
    keeper.until()            # the lease end a job released now gets (the dispatcher)
    await keeper.stop(release=True)

Invariants:
- A replica follows only jobs whose lease it holds (`jobs.lease_owner` = REPLICA_ID,
  `lease_until` ISO UTC). A lease is written for `VALIDITY` = 5/6 of LEASE_SECONDS and the
  loop ticks every LEASE_SECONDS/6, so a dead replica's jobs are claimed by another within
  LEASE_SECONDS of its death (lease end ≤ death + 5/6, the next tick ≤ 1/6 later): the
  issue's "taken over within the lease time", not "up to 4/3 of it".
  Each tick renews what it holds and claims the open jobs whose lease
  is empty or expired (a replica died, or stopped), oldest first, each in one transaction
  (bot/services/job_queue.py); every job held is followed, and a followed job whose lease is
  no longer this replica's is dropped (its follow task cancelled). A job followed after the
  tick's read began (the dispatcher just released it) is never dropped by that tick.
- A replica that could not renew stops acting by itself: at `deadline` — the start of its last
  successful renewal + VALIDITY − LEASE_SECONDS/6 (2/3 of LEASE_SECONDS) — it drops every
  job, before another replica may take them over (leases are compared on each replica's wall
  clock: keep the clocks in sync, well within LEASE_SECONDS/6). A tick never runs past the
  deadline; a slow tick may use all the time left before it (renewing thousands of leases on
  a busy replica), and the next one starts at once.
- Fair share: each tick a replica renews its heartbeat, the named lease `replica:<id>`
  (bot/services/leases.py), and counts the live ones. It claims free jobs only up to its
  share — `fair_share(open jobs, live replicas)`: an even split rounded up, plus SHARE_MARGIN —
  so a dead replica's jobs spread over the survivors; and if it holds more than its share (the
  dispatcher leases what it releases to the releasing replica; a replica that started alone
  took everything) it gives back the surplus of its jobs still waiting on their task, newest
  first, after it stopped following them; others under their share claim them at their next
  tick. No job is left unclaimed: a free job this replica passed over at one tick is claimed
  at the next if it is still free, whatever the share.
- `takeover` (SQLite: one process per database file) makes the first claim take every open
  job whatever its lease: a restart after a crash resumes at once, as before leases.
- The job book fences the writes that matter with the lease (`LeaseLost`), so a replica that
  lost a job can no longer change it even if it has not noticed yet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping

from bot.services.jobs import JobBook
from bot.services.leases import Leases

log = logging.getLogger(__name__)

CLAIM_LIMIT = 500  # jobs claimed (or given back) per tick at most (the rest at the next one)
HEARTBEAT = "replica:"  # the named lease of each live replica: replica:<REPLICA_ID>
SHARE_MARGIN = 0.05  # a replica may hold this share more than an even split (at least 2 jobs)


def fair_share(open_jobs: int, replicas: int) -> int:
    """The most open jobs one of `replicas` live replicas should hold."""
    even = -(-open_jobs // max(replicas, 1))
    return even + max(2, math.ceil(even * SHARE_MARGIN))


class LeaseKeeper:
    def __init__(
        self,
        book: JobBook,
        lease_seconds: float,
        *,
        follow: Callable[[str], None],
        drop: Callable[[str], None],
        followed: Callable[[], Mapping[str, float]],
        takeover: bool = False,
        claim_limit: int = CLAIM_LIMIT,
    ) -> None:
        self.book = book
        self.lease_seconds = lease_seconds
        self.validity = lease_seconds * 5 / 6  # what a lease is written for
        self.period = lease_seconds / 6
        self.margin = lease_seconds / 6
        self._follow = follow
        self._drop = drop
        self._followed = followed
        self.takeover = takeover
        self.claim_limit = claim_limit
        #: The open jobs this replica held at the last successful tick (and released since).
        self.held: set[str] = set()
        self.deadline = float("-inf")  # monotonic: drop everything at this moment
        self._task: asyncio.Task[None] | None = None
        self._expired = False
        self._leases = Leases(book.store)
        self._passed: set[str] = set()  # free jobs passed over at the last tick (fair share)
        self.share: int | None = None  # this replica's fair share at the last tick
        self.live = 1  # live replicas (itself included) at the last tick

    def until(self) -> str:
        """The end of a lease taken or renewed now (ISO UTC)."""
        end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.validity)
        return end.isoformat(timespec="milliseconds")

    def share_of(self, open_jobs: int) -> int | None:
        """This replica's fair share of `open_jobs` among the replicas live at the last tick
        (None before the first tick: no limit yet). The dispatcher leases what it releases
        only within it."""
        if self.share is None:
            return None
        return fair_share(open_jobs, self.live)

    def note(self, job_id: str) -> None:
        """A job this replica leased outside a tick (released from the queue)."""
        self.held.add(job_id)

    async def start(self) -> None:
        """The first tick (raises if the store fails: the process does not start), then the
        loop."""
        await self.tick(first=True)
        self._task = asyncio.create_task(self._run(), name="leases")

    async def stop(self, *, release: bool) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if release and self.book.replica is not None:
            try:
                async with asyncio.timeout(5.0):
                    given = await self.book.release_leases()
                    await self._leases.release(HEARTBEAT + self.book.replica, self.book.replica)
                if given:
                    log.info("released %d job lease(s)", given)
            except Exception as exc:
                log.warning("could not release the job leases (they expire by themselves): %s", exc)
        self.held.clear()

    async def tick(self, *, first: bool = False) -> None:
        started = time.monotonic()
        until = self.until()
        mine = await self.book.renew_leases(until)
        # Renewed: the deadline moves now, whatever the rest of the tick takes (its claims
        # queue for the write lock behind the intake on a busy replica).
        self.deadline = started + self.validity - self.margin
        self._expired = False
        if first and self.takeover:
            claimed = await self.book.claim_jobs(until, self.claim_limit, any_owner=True)
        else:
            self.live = await self._heartbeat()
            share = fair_share(await self.book.open_jobs(), self.live)
            mine -= await self._give_back(mine, share)
            room = min(max(share - len(mine), 0), self.claim_limit)
            claimed, left = await self.book.claim_some(until, room, self._passed)
            self._passed = set(left)
            self.share = share
        if claimed:
            log.info("took %d job lease(s)", len(claimed))
        held = mine | set(claimed)
        for job_id, since in list(self._followed().items()):
            if job_id not in held and since < started:
                log.warning("job %s: its lease is another replica's; not following it", job_id)
                self._drop(job_id)
        self.held = held
        for job_id in sorted(held):
            self._follow(job_id)

    async def _heartbeat(self) -> int:
        """Renew this replica's heartbeat lease; how many replicas are live (itself included)."""
        owner = self.book.replica
        assert owner is not None
        await self._leases.claim(HEARTBEAT + owner, owner, self.validity)
        return max(len(await self._leases.holders(HEARTBEAT)), 1)

    async def _give_back(self, mine: set[str], share: int) -> set[str]:
        """Over the share: stop following the newest jobs still waiting on their task, then
        give their leases back; those jobs."""
        over = min(len(mine) - share, self.claim_limit)
        if over <= 0:
            return set()
        surplus = [job for job in await self.book.newest_polled(over) if job in mine]
        for job_id in surplus:
            self._drop(job_id)  # first: no follow of ours acts on a job another may take
        given = await self.book.give_back(surplus)
        log.info("gave back %d job lease(s) over the fair share of %d", given, share)
        return set(surplus)  # one not given back (it moved on) is renewed and followed next tick

    async def _run(self) -> None:
        next_tick = time.monotonic() + self.period
        while True:
            now = time.monotonic()
            wake_at = next_tick if self._expired else min(next_tick, self.deadline)
            if wake_at > now:
                await asyncio.sleep(wake_at - now)
            now = time.monotonic()
            if now >= self.deadline and not self._expired:
                self._expire()
            if now < next_tick:
                continue
            next_tick = now + self.period
            budget = self.deadline - now if self.deadline > now else self.period
            renewed = self.deadline
            try:
                async with asyncio.timeout(budget):
                    await self.tick()
            except Exception as exc:  # the database is away: retried at the next tick
                why = str(exc) or type(exc).__name__  # a timeout's text is empty
                if self.deadline != renewed:  # the renewal committed; claims did not finish
                    log.warning("the lease tick stopped after its renewal: %s", why)
                else:
                    log.warning("could not renew the job leases: %s", why)

    def _expire(self) -> None:
        """The leases ran out unrenewed: stop acting on any job (another may take them)."""
        self._expired = True
        followed = list(self._followed())
        if followed:
            log.error(
                "could not renew the job leases for %.0f s: no longer following %d job(s)",
                self.validity - self.margin,
                len(followed),
            )
        for job_id in followed:
            self._drop(job_id)
        self.held.clear()
