"""SQL on the `approvals` and `alerts` tables. Only `bot.services.approvals`,
`bot.services.oversight` and
`bot.services.alerts` call this module.

Invariants:
- A decision is compare-and-set on `status = 'pending'` and an unexpired `expires_at`: of two
  admins deciding at once exactly one changes the row.
- `told_at` is written once, after the requester's platform was told the decision (or the
  expiry); a decision without it is told by the running bot's sweep (bot/services/oversight.py).
- An alert is claimed by an insert that does nothing on conflict with its primary key (who,
  period, kind, threshold): of two requests crossing a threshold at once exactly one sends it.
"""

from __future__ import annotations

import datetime as dt
import json

from bot.domain.models import Requester, Surface, VideoRequest
from bot.infra.store.engine import Row, Tx, now_iso, one, rows

COLUMNS = (
    "id, platform, workspace, user_id, user_name, request_json, surface_json, admin_refs_json,"
    " price_uc, status, created_at, expires_at, decided_at, decided_by, job_id, roles_json,"
    " told_at"
)


async def insert(
    tx: Tx,
    approval_id: str,
    who: Requester,
    request: VideoRequest,
    surface: Surface,
    price_uc: int,
    ttl: dt.timedelta,
) -> None:
    now = dt.datetime.now(dt.UTC)
    await tx.execute(
        "INSERT INTO approvals (id, platform, workspace, user_id, user_name, request_json,"
        " surface_json, price_uc, status, created_at, expires_at, roles_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (
            approval_id,
            who.platform,
            who.workspace,
            who.user,
            who.display_name,
            request.model_dump_json(),
            surface.model_dump_json(),
            price_uc,
            now.isoformat(timespec="milliseconds"),
            (now + ttl).isoformat(timespec="milliseconds"),
            json.dumps(list(who.roles)),
        ),
    )


async def decide(
    tx: Tx, approval_id: str, status: str, actor: str, job_id: str | None = None
) -> bool:
    """pending → `status`, if still pending and not expired. True for the one winner."""
    cur = await tx.execute(
        "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, job_id = ?"
        " WHERE id = ? AND status = 'pending' AND expires_at > ?",
        (status, now_iso(), actor, job_id, approval_id, now_iso()),
    )
    return cur.rowcount == 1


async def link_job(tx: Tx, approval_id: str, job_id: str) -> None:
    await tx.execute("UPDATE approvals SET job_id = ? WHERE id = ?", (job_id, approval_id))


async def save_admin_refs(tx: Tx, approval_id: str, refs: dict[str, str]) -> None:
    await tx.execute(
        "UPDATE approvals SET admin_refs_json = ? WHERE id = ?", (json.dumps(refs), approval_id)
    )


async def expire(tx: Tx, approval_id: str) -> bool:
    cur = await tx.execute(
        "UPDATE approvals SET status = 'expired', decided_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (now_iso(), approval_id),
    )
    return cur.rowcount == 1


async def get(tx: Tx, approval_id: str) -> Row | None:
    return await one(tx, f"SELECT {COLUMNS} FROM approvals WHERE id = ?", (approval_id,))


async def pending(tx: Tx, platform: str | None) -> list[Row]:
    sql = f"SELECT {COLUMNS} FROM approvals WHERE status = 'pending'"
    params: tuple[str, ...] = ()
    if platform is not None:
        sql += " AND platform = ?"
        params = (platform,)
    return await rows(tx, sql + " ORDER BY created_at", params)


async def due(tx: Tx) -> list[str]:
    found = await rows(
        tx, "SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now_iso(),)
    )
    return [str(r[0]) for r in found]


async def untold(tx: Tx, since: str) -> list[str]:
    """Decided approvals (since `since`, ISO) whose requester has not been told, oldest first."""
    found = await rows(
        tx,
        "SELECT id FROM approvals WHERE status != 'pending' AND told_at IS NULL"
        " AND decided_at >= ? ORDER BY decided_at",
        (since,),
    )
    return [str(r[0]) for r in found]


async def mark_told(tx: Tx, approval_id: str) -> bool:
    cur = await tx.execute(
        "UPDATE approvals SET told_at = ? WHERE id = ? AND told_at IS NULL",
        (now_iso(), approval_id),
    )
    return cur.rowcount == 1


async def claim_alert(
    tx: Tx, who: Requester, user: str, period_key: str, kind: str, threshold: int
) -> bool:
    """Record that this alert is sent; False when it already was (someone else sends it)."""
    cur = await tx.execute(
        "INSERT INTO alerts"
        " (platform, workspace, user_id, period_start, kind, threshold, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (who.platform, who.workspace, user, period_key, kind, threshold, now_iso()),
    )
    return cur.rowcount == 1
