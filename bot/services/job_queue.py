"""The job book's queue and lease half (a part of bot/services/jobs.py, split for length):
the fair queue's releases and the job leases of replicas sharing one database. `JobBook`
inherits it; nothing else uses it. Same invariants as jobs.py, and:

- `release_fitting` reads the queue and each waiting workspace's concurrency caps (its
  settings, else MAX_JOBS_PER_USER / MAX_JOBS_PER_WORKSPACE), decides and releases in ONE
  transaction (one writer at a time, across replicas): two replicas dispatching at once never
  exceed a workspace's caps; each released job is leased to the releasing replica in that
  transaction, and `released_at` (the round-robin's memory) written.
- `claim_jobs` / `claim_some` lease free or expired open jobs (released, submitted,
  delivering; never a queued one) in one transaction, oldest first; `renew_leases` extends
  only this replica's own; `give_back` clears some of its own on jobs still waiting on their
  task (the fair share, bot/services/job_leases.py); `release_leases` gives them all back (a
  clean stop).
- `_fence` is the check every write that matters makes inside its own transaction: no other
  replica holds the job's lease, else `LeaseLost` and nothing written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from bot.domain.lifecycle import P
from bot.infra.store import Store, Tx, now_iso
from bot.infra.store import job_lease_rows as lease_sql
from bot.infra.store import job_rows as sql
from bot.infra.store.job_rows import WaitingRow

if TYPE_CHECKING:
    from bot.services.ledger import Ledger

#: The dispatcher's pure decision: (waiting, in flight per user, last release per user,
#: "platform:workspace" → (max jobs per user, per workspace) of each waiting job's workspace)
#: → (jobs to start, new places in line).
Decide = Callable[
    [
        Sequence[WaitingRow],
        Sequence[tuple[str, str, str, int]],
        Mapping[str, str],
        Mapping[str, tuple[int, int]],
    ],
    tuple[list[str], dict[str, int]],
]


class LeaseLost(Exception):
    """This replica no longer holds the job's lease (another replica took it over)."""

    def __init__(self, job_id: str, owner: str | None) -> None:
        super().__init__(f"job {job_id}: the lease is {owner or 'nobody'}'s now")
        self.job_id = job_id
        self.owner = owner


class JobQueue:
    store: Store
    ledger: Ledger
    #: The replica whose tracker writes through this book (None: no fencing, the CLI).
    replica: str | None

    # -- the queue ---------------------------------------------------------------------------

    async def in_flight_by_user(self) -> list[tuple[str, str, str, int]]:
        async with self.store.reading() as tx:
            return await sql.in_flight_by_user(tx)

    async def release_from_queue(self, job_id: str, lease_until: str | None = None) -> bool:
        """A queued job got a slot: the tracker may submit it now (leased to this replica
        until `lease_until`, when given)."""
        async with self.store.transaction() as tx:
            return await self._release_in(tx, job_id, lease_until)

    async def _release_in(self, tx: Tx, job_id: str, lease_until: str | None) -> bool:
        lease = {"lease_owner": self.replica, "lease_until": lease_until} if lease_until else {}
        return await sql.update(
            tx,
            job_id,
            (P,),
            {"queued": 0, "queue_position": None, "released_at": now_iso(), **lease},
        )

    async def release_fitting(
        self,
        decide: Decide,
        lease_until: str | None,
        share_of: Callable[[int], int | None] | None = None,
    ) -> tuple[list[str], list[str]]:
        """Read the queue, decide (`decide`, the fair queue's policy) and release, in ONE
        transaction: two replicas dispatching at once never exceed the concurrency limits.
        (jobs released and leased to this replica until `lease_until` — only as many as
        keep it within `share_of(open jobs after the release)` (None: all); the others are
        released with no lease, for the next claim of a replica with room —, jobs whose
        place in line changed)."""
        async with self.store.transaction() as tx:
            waiting = await sql.waiting(tx)
            if not waiting:
                return [], []
            in_flight = await sql.in_flight_by_user(tx)
            last = await sql.last_releases(tx)
            # Each workspace's concurrency caps as committed (its settings, else the
            # environment's): one read of the caps rows, in this transaction.
            where = {f"{row.platform}:{row.workspace}" for row in waiting}
            caps = await self.ledger.workspace_settings.caps_in(tx, where)
            start, positions = decide(waiting, in_flight, last, caps)
            mine = start
            if share_of is not None and lease_until is not None and start:
                share = share_of(await lease_sql.followable_count(tx) + len(start))
                if share is not None:
                    room = share - await lease_sql.held_count(tx, self._owner())
                    mine = start[: max(room, 0)]
            started = [job for job in mine if await self._release_in(tx, job, lease_until)]
            for job in start[len(mine) :]:
                await self._release_in(tx, job, None)  # free: claimed at a lease tick
            for job_id, position in positions.items():
                await sql.update(tx, job_id, (P,), {"queue_position": position})
        return started, list(positions)

    async def set_queue_position(self, job_id: str, position: int) -> None:
        async with self.store.transaction() as tx:
            await sql.update(tx, job_id, (P,), {"queue_position": position})

    # -- leases --------------------------------------------------------------------------------

    async def claim_jobs(self, until: str, limit: int, *, any_owner: bool = False) -> list[str]:
        """Lease to this replica the oldest open jobs (released, submitted, delivering) whose
        lease is empty or expired — any lease when `any_owner` (SQLite's one process at
        start) — at most `limit`, in one transaction; their ids."""
        owner = self._owner()
        async with self.store.transaction() as tx:
            return await sql.claim(tx, owner, until, now_iso(), limit, any_owner=any_owner)

    async def open_jobs(self) -> int:
        """Open jobs some replica must follow (released, submitted, delivering)."""
        async with self.store.reading() as tx:
            return await lease_sql.followable_count(tx)

    async def claim_some(
        self, until: str, limit: int, also: Collection[str] = ()
    ) -> tuple[list[str], list[str]]:
        """Lease to this replica the oldest `limit` free or expired open jobs, and those of
        `also` still free, in one transaction; (claimed, free ones left unclaimed)."""
        owner = self._owner()
        async with self.store.transaction() as tx:
            return await lease_sql.claim_some(tx, owner, until, now_iso(), limit, also)

    async def newest_polled(self, limit: int) -> list[str]:
        """This replica's jobs waiting on their EvoLink task, newest first (at most `limit`)."""
        owner = self._owner()
        async with self.store.reading() as tx:
            return await lease_sql.newest_polled(tx, owner, limit)

    async def give_back(self, job_ids: list[str]) -> int:
        """Clear this replica's leases of those jobs still waiting on their task (others may
        claim them at once); how many."""
        owner = self._owner()
        async with self.store.transaction() as tx:
            return await lease_sql.give_back(tx, owner, job_ids)

    async def renew_leases(self, until: str) -> set[str]:
        """Extend this replica's leases to `until`; the open jobs it still holds. A row write
        (one UPDATE, outside the one-writer rule): at 10,000 jobs a renewal queued behind the
        intake's writes missed its deadline, and the replica dropped every job it followed."""
        owner = self._owner()
        async with self.store.row_write() as tx:
            return await sql.renew(tx, owner, until)

    async def release_leases(self) -> int:
        """Give back every lease of this replica (a clean stop): others may take them now."""
        owner = self._owner()
        async with self.store.transaction() as tx:
            return await sql.release_leases(tx, owner)

    def _owner(self) -> str:
        if self.replica is None:
            raise RuntimeError("a job book without a replica id holds no leases")
        return self.replica

    async def _fence(self, tx: Tx, job_id: str) -> None:
        """Raise LeaseLost when another replica holds the job's lease (inside `tx`, so no
        claim can come in between). A job nobody holds — never claimed (a test driving the
        book, a database from before leases) or given back by its holder after its follow
        ended — is written as before: a tracker follows only jobs it leased, so the writer of
        an unheld job is never a replica that lost it to another."""
        if self.replica is None:
            return
        owner, _until = await sql.lease_of(tx, job_id)
        if owner is not None and owner != self.replica:
            raise LeaseLost(job_id, owner)
