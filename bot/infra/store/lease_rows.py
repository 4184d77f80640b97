"""SQL on `leases`: named leases, one holder per name — written only by bot.services.leases.

Invariants: `until` is an ISO UTC timestamp (`now_iso` form), so text order is time order; a
row is never deleted by a claim, only taken over (`put`) or removed by its holder (`drop`).
The caller decides inside its own `transaction()`, so the read and the write it makes from
it commit together (one writer per database: no two holders).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra.store.engine import Row, Tx, one, rows


@dataclass(frozen=True)
class LeaseRow:
    name: str
    owner: str
    until: str
    data: str | None


def _row(row: Row) -> LeaseRow:
    return LeaseRow(row["name"], row["owner"], row["until"], row["data"])


async def get(tx: Tx, name: str) -> LeaseRow | None:
    found = await one(tx, "SELECT name, owner, until, data FROM leases WHERE name = ?", (name,))
    return None if found is None else _row(found)


async def put(tx: Tx, name: str, owner: str, until: str, data: str | None) -> None:
    """Insert the lease or take it over (the caller checked that it may)."""
    await tx.execute(
        "INSERT INTO leases (name, owner, until, data) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until,"
        " data = excluded.data",
        (name, owner, until, data),
    )


async def extend(tx: Tx, name: str, owner: str, until: str) -> bool:
    """Move `until` of a lease `owner` holds; False when it is not theirs (any more)."""
    cur = await tx.execute(
        "UPDATE leases SET until = ? WHERE name = ? AND owner = ?", (until, name, owner)
    )
    return cur.rowcount > 0


async def drop(tx: Tx, name: str, owner: str) -> bool:
    """Remove a lease `owner` holds; False when it is not theirs."""
    cur = await tx.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
    return cur.rowcount > 0


async def every(tx: Tx) -> list[LeaseRow]:
    """All leases, by name (the table holds a handful: shards, singletons)."""
    found = await rows(tx, "SELECT name, owner, until, data FROM leases ORDER BY name")
    return [_row(r) for r in found]
