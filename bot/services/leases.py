"""Named leases: one holder per name among the replicas on one database (a Discord gateway
shard `discord-shard-<i>`, a singleton task). SQL in bot/infra/store/lease_rows.py.

    leases = Leases(store)
    await leases.claim("discord-shard-0", owner, 30, data="2")   # True: held until now + 30 s
    await leases.renew("discord-shard-0", owner, 30)             # False: not ours any more
    await leases.release("discord-shard-0", owner)               # a clean stop
    await leases.holders("discord-shard-")                       # live leases by name

Invariants:
- A name has at most one live holder: `claim` reads and writes in one `transaction()` (one
  writer per database, across replicas), taking a lease only when it is free, expired, or
  already the claimant's (then extended).
- `renew` and `release` act only for the current holder; an expired lease is not renewed
  (another replica may hold it by then, or may at any moment).
- `until` is ISO UTC on the claimant's clock (keep the replicas' clocks in sync).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.infra.store import Store, now_iso
from bot.infra.store import lease_rows as sql


@dataclass(frozen=True)
class Lease:
    name: str
    owner: str
    until: str
    data: str | None


def _until(seconds: float) -> str:
    if seconds <= 0:
        raise ValueError(f"a lease lasts a positive number of seconds, not {seconds}")
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return end.isoformat(timespec="milliseconds")


class Leases:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def claim(self, name: str, owner: str, seconds: float, data: str | None = None) -> bool:
        """Take `name` for `seconds` if it is free, expired or already `owner`'s."""
        until = _until(seconds)
        async with self.store.transaction() as tx:
            current = await sql.get(tx, name)
            if current is not None and current.owner != owner and current.until > now_iso():
                return False
            await sql.put(tx, name, owner, until, data)
            return True

    async def renew(self, name: str, owner: str, seconds: float) -> bool:
        """Extend `owner`'s live lease on `name`; False when it is not theirs (any more)."""
        until = _until(seconds)
        async with self.store.transaction() as tx:
            current = await sql.get(tx, name)
            if current is None or current.owner != owner or current.until <= now_iso():
                return False
            return await sql.extend(tx, name, owner, until)

    async def release(self, name: str, owner: str) -> bool:
        async with self.store.transaction() as tx:
            return await sql.drop(tx, name, owner)

    async def holders(self, prefix: str = "") -> dict[str, Lease]:
        """The live leases whose name starts with `prefix`, by name."""
        now = now_iso()
        async with self.store.reading() as tx:
            found = await sql.every(tx)
        return {
            r.name: Lease(r.name, r.owner, r.until, r.data)
            for r in found
            if r.name.startswith(prefix) and r.until > now
        }
