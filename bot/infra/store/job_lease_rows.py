"""SQL of the fair-share job leases (replicas sharing one database): how many open jobs there
are, claims of some free ones, and giving leases back. Only `bot.services.job_queue` (the job
book's lease half) calls it; the plain claim, renewal and release are in job_rows.py.

Invariants: every function runs inside the caller's `transaction()` (one writer per database:
a read and the write made from it commit together, so no job is ever leased to two replicas);
a claim's UPDATE checks again that the lease is free (`FREE`: renewals run outside the write
lock); `give_back` only clears a lease its owner holds on a job still waiting on its task.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.infra.store.engine import Tx, one, rows
from bot.infra.store.job_rows import FOLLOWABLE, FREE

CLAIM_SCAN = 2000  # free jobs one fair-share claim looks at (the rest at later ticks)


async def followable_count(tx: Tx) -> int:
    """Open jobs a replica may follow (released, submitted, delivering), whoever holds them."""
    row = await one(tx, f"SELECT COUNT(*) FROM jobs WHERE {FOLLOWABLE}")
    return int(row[0]) if row else 0


async def held_count(tx: Tx, owner: str) -> int:
    """Open jobs `owner` holds the lease of."""
    row = await one(
        tx, f"SELECT COUNT(*) FROM jobs WHERE {FOLLOWABLE} AND lease_owner = ?", (owner,)
    )
    return int(row[0]) if row else 0


async def claim_some(
    tx: Tx, owner: str, until: str, now: str, limit: int, also: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Lease to `owner` until `until` the oldest `limit` open jobs whose lease is empty or
    expired at `now`, and any of `also` that still is; (claimed, free ones left). At most
    `CLAIM_SCAN` free jobs are looked at. Inside `transaction()`."""
    found = await rows(
        tx,
        f"SELECT id FROM jobs WHERE {FOLLOWABLE} AND {FREE} ORDER BY created_at, id LIMIT ?",
        (now, CLAIM_SCAN),
    )
    free = [str(r[0]) for r in found]
    wanted = set(also)
    take = [job for i, job in enumerate(free) if i < limit or job in wanted]
    taken: set[str] = set()
    if take:
        got = await rows(
            tx,
            f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN"
            f" ({', '.join('?' for _ in take)}) AND {FREE} RETURNING id",
            (owner, until, *take, now),
        )
        taken = {str(r[0]) for r in got}
    left = [job for job in free if job not in taken and job not in take]
    return [job for job in take if job in taken], left


async def newest_polled(tx: Tx, owner: str, limit: int) -> list[str]:
    """`owner`'s submitted jobs (waiting on their EvoLink task), newest first, at most `limit`."""
    found = await rows(
        tx,
        "SELECT id FROM jobs WHERE lease_owner = ? AND status = 'submitted'"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (owner, limit),
    )
    return [str(r[0]) for r in found]


async def give_back(tx: Tx, owner: str, ids: list[str]) -> int:
    """Clear `owner`'s leases of those of `ids` that are still submitted; how many."""
    if not ids:
        return 0
    cur = await tx.execute(
        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
        f" AND status = 'submitted' AND id IN ({', '.join('?' for _ in ids)})",
        (owner, *ids),
    )
    return cur.rowcount
