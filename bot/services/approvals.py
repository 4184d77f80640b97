"""Asking an admin for more: a refused request becomes an approval that exactly one admin decides.

    pending ──approve──▶ approved   (grant exactly the price + accept the job: one transaction)
       │  ───deny────▶ denied
       └──expires───▶ expired       (after APPROVAL_TTL_MINUTES)

Invariants:
- A decision is compare-and-set on `status = 'pending'`: when two admins click at once, one
  wins and the other is told who decided; the grant and the job exist only for the winner.
- Approving grants exactly the job's price to the requester for the current period, and the
  job is admitted even if that still leaves a budget short (the admin decided), so the
  approved video is always made. Every decision is an audit row.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from decimal import Decimal

from pydantic import BaseModel

from bot.domain.models import Requester, Surface, VideoRequest, from_uc
from bot.infra.store import Row, Tx
from bot.infra.store import approval_rows as sql
from bot.infra.store.job_rows import requester_of_row

STATUSES = ("pending", "approved", "denied", "expired")


class Approval(BaseModel):
    id: str
    requester: Requester
    request: VideoRequest
    surface: Surface
    price: Decimal
    status: str
    created_at: dt.datetime
    expires_at: dt.datetime
    decided_at: dt.datetime | None = None
    decided_by: str | None = None
    job_id: str | None = None
    #: When the requester was told the decision (None: not yet; bot/services/oversight.py).
    told_at: dt.datetime | None = None
    #: Where admins were asked (adapter-owned: channel and message ids), to update that message.
    admin_refs: dict[str, str] = {}


def row_to_approval(row: Row) -> Approval:
    return Approval(
        id=row["id"],
        requester=requester_of_row(row),
        request=VideoRequest.model_validate_json(row["request_json"]),
        surface=Surface.model_validate_json(row["surface_json"]),
        price=from_uc(int(row["price_uc"])),
        status=row["status"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        expires_at=dt.datetime.fromisoformat(row["expires_at"]),
        decided_at=(dt.datetime.fromisoformat(row["decided_at"]) if row["decided_at"] else None),
        decided_by=row["decided_by"],
        job_id=row["job_id"],
        told_at=dt.datetime.fromisoformat(row["told_at"]) if row["told_at"] else None,
        admin_refs=json.loads(row["admin_refs_json"] or "{}"),
    )


def decision_summary(approval: Approval, pickup_seconds: float) -> str:
    """What a decision means now, for the admin who made it outside the chat (the CLI): the
    job is queued, not started, and the requester is told by the running bot."""
    if approval.status == "approved" and approval.job_id:
        return (
            f"{approval.id}: approved; job {approval.job_id} is queued and starts within "
            f"{pickup_seconds:.0f} s of a running bot (`sora-bot run`) seeing it, which also "
            "tells the requester."
        )
    if approval.status == "denied":
        return f"{approval.id}: denied; the running bot tells the requester."
    return f"{approval.id}: {approval.status}"


def new_approval_id() -> str:
    return "a" + secrets.token_hex(8)


async def insert(
    tx: Tx,
    who: Requester,
    request: VideoRequest,
    surface: Surface,
    price_uc: int,
    ttl: dt.timedelta,
) -> str:
    approval_id = new_approval_id()
    await sql.insert(tx, approval_id, who, request, surface, price_uc, ttl)
    return approval_id


async def decide(
    tx: Tx, approval_id: str, status: str, actor: str, job_id: str | None = None
) -> bool:
    """pending → `status`, if still pending and not expired. True for the one winner."""
    return await sql.decide(tx, approval_id, status, actor, job_id)


async def get(tx: Tx, approval_id: str) -> Approval | None:
    row = await sql.get(tx, approval_id)
    return None if row is None else row_to_approval(row)


async def pending(tx: Tx, platform: str | None) -> list[Approval]:
    return [row_to_approval(r) for r in await sql.pending(tx, platform)]
