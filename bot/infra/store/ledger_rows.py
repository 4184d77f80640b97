"""SQL on the money tables: `ledger`, `limits`, `role_limits` and `audit`.

Only `bot.services.ledger` (the money owner) calls this module; it decides, this module reads and
writes rows. Amounts are integer uc (1/10,000 credit).

Invariants:
- `ledger` is append-only: a hold is settled by a new `capture` or `release` entry, never by
  an update; two unique indexes allow one hold and one settlement per job.
- Every sum of the ledger is written once, here: `_SUMS` (granted, used = Σ capture,
  held = Σ hold − Σ settles, jobs).
- `ledger_totals` keeps those sums running per (period, platform, workspace, user), the team's
  row with user_id = TEAM: every function here that inserts a ledger entry adds it to the
  user's and the team's rows in the same statement sequence, so in the caller's transaction.
  The entries stay the truth: `recomputed_totals` is `_SUMS` over them, and `sora-bot admin
  verify` compares the two. One upsert moves the user's row and then the team's (one lock
  order) and returns both, so admission checks the totals that already include its hold;
  write transactions are serialised by the store either way (bot/infra/store/engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.models import Requester
from bot.infra.store.engine import Tx, now_iso, one, rows
from bot.infra.store.job_rows import where

TEAM = ""  # the `limits.user_id` value of a workspace's team budget


@dataclass(frozen=True)
class Sums:
    """Ledger sums for one scope and period, in uc (1/10,000 credit)."""

    granted_uc: int
    used_uc: int
    held_uc: int
    jobs: int


_SUMS = (
    "COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_uc END), 0),"
    " COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_uc END), 0),"
    " COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_uc END), 0)"
    "   - COALESCE(SUM(settles_uc), 0),"
    " COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)"
)


#: A row of `ledger_totals`: (period_start, platform, workspace, user_id; TEAM for the team).
TotalsKey = tuple[str, str, str, str]
_TOTALS = "granted_uc, used_uc, held_uc, jobs"
_ZERO = Sums(0, 0, 0, 0)


async def stored_total(tx: Tx, period_key: str, platform: str, workspace: str, user: str) -> Sums:
    """One running total (`user` = TEAM: the workspace's); zeros when it has no entries."""
    row = await one(
        tx,
        f"SELECT {_TOTALS} FROM ledger_totals"
        " WHERE period_start = ? AND platform = ? AND workspace = ? AND user_id = ?",
        (period_key, platform, workspace, user),
    )
    return _ZERO if row is None else Sums(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def user_sums(tx: Tx, who: Requester, period_key: str) -> Sums:
    return await stored_total(tx, period_key, who.platform, who.workspace, who.user)


async def team_sums(tx: Tx, platform: str, workspace: str, period_key: str) -> Sums:
    return await stored_total(tx, period_key, platform, workspace, TEAM)


async def user_and_team_totals(
    tx: Tx, period_key: str, platform: str, workspace: str, user: str
) -> tuple[Sums, Sums]:
    """The user's and the team's running totals in one read (zeros where there is none)."""
    found = await rows(
        tx,
        f"SELECT user_id, {_TOTALS} FROM ledger_totals"
        " WHERE period_start = ? AND platform = ? AND workspace = ? AND user_id IN (?, ?)",
        (period_key, platform, workspace, user, TEAM),
    )
    by_user = {r[0]: Sums(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in found}
    return by_user.get(user, _ZERO), by_user.get(TEAM, _ZERO)


async def _add_to_totals(
    tx: Tx, period_key: str, platform: str, workspace: str, user: str, change: Sums
) -> tuple[Sums, Sums]:
    """Add one entry's effect to the user's and the team's running totals (one statement);
    returns both totals as they now are."""
    if user == TEAM:
        raise ValueError("a ledger entry belongs to a user; the empty id is the team's row")
    figures = (change.granted_uc, change.used_uc, change.held_uc, change.jobs)
    mine, team = (period_key, platform, workspace, user), (period_key, platform, workspace, TEAM)
    cur = await tx.execute(
        f"INSERT INTO ledger_totals (period_start, platform, workspace, user_id, {_TOTALS})"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (period_start, platform, workspace, user_id) DO UPDATE SET"
        " granted_uc = ledger_totals.granted_uc + excluded.granted_uc,"
        " used_uc = ledger_totals.used_uc + excluded.used_uc,"
        " held_uc = ledger_totals.held_uc + excluded.held_uc,"
        " jobs = ledger_totals.jobs + excluded.jobs"
        f" RETURNING user_id, {_TOTALS}",
        (*mine, *figures, *team, *figures),
    )
    now = {r[0]: Sums(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in await cur.fetchall()}
    return now[user], now[TEAM]


async def all_stored_totals(tx: Tx) -> dict[TotalsKey, Sums]:
    """Every row of `ledger_totals`."""
    found = await rows(
        tx, f"SELECT period_start, platform, workspace, user_id, {_TOTALS} FROM ledger_totals"
    )
    return {
        (r[0], r[1], r[2], r[3]): Sums(int(r[4]), int(r[5]), int(r[6]), int(r[7])) for r in found
    }


_RECOMPUTED = (
    f"SELECT period_start, platform, workspace, user_id, {_SUMS} FROM ledger"
    " GROUP BY period_start, platform, workspace, user_id"
    f" UNION ALL SELECT period_start, platform, workspace, '', {_SUMS} FROM ledger"
    " GROUP BY period_start, platform, workspace"
)


async def recomputed_totals(tx: Tx) -> dict[TotalsKey, Sums]:
    """What every running total should be: `_SUMS` over the entries, per user and per team."""
    found = await rows(tx, _RECOMPUTED)
    return {
        (r[0], r[1], r[2], r[3]): Sums(int(r[4]), int(r[5]), int(r[6]), int(r[7])) for r in found
    }


async def rebuild_totals(tx: Tx) -> None:
    """Replace every running total by its recomputation (after entries were written without
    this module, e.g. a benchmark's bulk history)."""
    await tx.execute("DELETE FROM ledger_totals")
    await tx.execute(
        "INSERT INTO ledger_totals (period_start, platform, workspace, user_id,"
        f" {_TOTALS}) {_RECOMPUTED}"
    )


async def sums_by_user(
    tx: Tx, period_key: str, platform: str | None, workspace: str | None
) -> list[tuple[Requester, Sums]]:
    """Every user with entries in the period, in (platform, workspace, user) order."""
    clauses, params = where(period_start=period_key, platform=platform, workspace=workspace)
    found = await rows(
        tx,
        f"SELECT platform, workspace, user_id, {_SUMS} FROM ledger {clauses}"
        " GROUP BY platform, workspace, user_id ORDER BY platform, workspace, user_id",
        params,
    )
    return [
        (
            Requester(platform=r[0], workspace=r[1], user=r[2]),
            Sums(int(r[3]), int(r[4]), int(r[5]), int(r[6])),
        )
        for r in found
    ]


async def captures_by_user(
    tx: Tx, period_key: str, platform: str | None, workspace: str | None
) -> dict[tuple[str, str, str], int]:
    """(platform, workspace, user) → captured (delivered and charged) jobs in the period."""
    clauses, params = where(period_start=period_key, platform=platform, workspace=workspace)
    found = await rows(
        tx,
        f"SELECT platform, workspace, user_id, COUNT(*) FROM ledger {clauses}"
        " AND kind = 'capture' GROUP BY platform, workspace, user_id",
        params,
    )
    return {(r[0], r[1], r[2]): int(r[3]) for r in found}


async def totals(tx: Tx, period_key: str) -> tuple[int, int, int, int]:
    """(held now, captured ever, held in the period, captured in the period)."""
    row = await one(
        tx,
        "SELECT"
        " COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_uc ELSE 0 END), 0)"
        "   - COALESCE(SUM(settles_uc), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_uc ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN period_start = ? AND kind = 'hold' THEN amount_uc ELSE 0 END),"
        "   0) - COALESCE(SUM(CASE WHEN period_start = ? THEN settles_uc ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN period_start = ? AND kind = 'capture' THEN amount_uc ELSE 0"
        "   END), 0)"
        " FROM ledger",
        (period_key, period_key, period_key),
    )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def has_history(tx: Tx, platform: str, workspace: str, user: str | None) -> bool:
    """Has anyone (`user` None) or this user of the workspace any job, approval request or
    ledger entry? (A limit or budget alone is not a sign of use.)"""
    who = "platform = ? AND workspace = ?" + ("" if user is None else " AND user_id = ?")
    params = (platform, workspace) if user is None else (platform, workspace, user)
    row = await one(
        tx,
        f"SELECT EXISTS (SELECT 1 FROM jobs WHERE {who})"
        f" OR EXISTS (SELECT 1 FROM approvals WHERE {who})"
        f" OR EXISTS (SELECT 1 FROM ledger WHERE {who})",
        params * 3,
    )
    return row is not None and bool(row[0])


async def own_and_team_limit_uc(
    tx: Tx, platform: str, workspace: str, user: str
) -> tuple[int | None, int | None]:
    """The user's own limit and the workspace's team budget (None: not set), in one read."""
    found = await rows(
        tx,
        "SELECT user_id, limit_uc FROM limits WHERE platform = ? AND workspace = ?"
        " AND user_id IN (?, ?)",
        (platform, workspace, user, TEAM),
    )
    by_user = {r[0]: int(r[1]) for r in found}
    return by_user.get(user), by_user.get(TEAM)


async def own_limit_uc(tx: Tx, platform: str, workspace: str, user: str) -> int | None:
    row = await one(
        tx,
        "SELECT limit_uc FROM limits WHERE platform = ? AND workspace = ? AND user_id = ?",
        (platform, workspace, user),
    )
    return None if row is None else int(row[0])


async def best_role_limit_uc(
    tx: Tx, platform: str, workspace: str, roles: tuple[str, ...]
) -> int | None:
    if not roles:
        return None
    marks = ", ".join("?" for _ in roles)
    row = await one(
        tx,
        "SELECT MAX(limit_uc) FROM role_limits WHERE platform = ? AND workspace = ?"
        f" AND role IN ({marks})",
        (platform, workspace, *roles),
    )
    return None if row is None or row[0] is None else int(row[0])


async def write_limit(
    tx: Tx, platform: str, workspace: str, user: str, amount_uc: int, actor: str
) -> None:
    await tx.execute(
        "INSERT INTO limits (platform, workspace, user_id, limit_uc, updated_at, actor)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, user_id)"
        " DO UPDATE SET limit_uc = excluded.limit_uc, updated_at = excluded.updated_at,"
        " actor = excluded.actor",
        (platform, workspace, user, amount_uc, now_iso(), actor),
    )


async def write_role_limit(
    tx: Tx, platform: str, workspace: str, role: str, amount_uc: int, actor: str
) -> None:
    await tx.execute(
        "INSERT INTO role_limits (platform, workspace, role, limit_uc, updated_at, actor)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, role)"
        " DO UPDATE SET limit_uc = excluded.limit_uc, updated_at = excluded.updated_at,"
        " actor = excluded.actor",
        (platform, workspace, role, amount_uc, now_iso(), actor),
    )


async def write_hold(
    tx: Tx, who: Requester, job_id: str, amount_uc: int, period_key: str
) -> tuple[Sums, Sums]:
    """The hold entry; returns the user's and the team's totals with it."""
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user_id, kind, amount_uc,"
        " job_id) VALUES (?, ?, ?, ?, ?, 'hold', ?, ?)",
        (now_iso(), period_key, who.platform, who.workspace, who.user, amount_uc, job_id),
    )
    change = Sums(granted_uc=0, used_uc=0, held_uc=amount_uc, jobs=1)
    return await _add_to_totals(tx, period_key, who.platform, who.workspace, who.user, change)


async def write_settlement(tx: Tx, job_id: str, charge_uc: int | None, actor: str | None) -> bool:
    """Settle the job's hold once: a capture of `charge_uc`, or a release when None. False
    (nothing written) when there is no hold or it is already settled."""
    hold = await one(
        tx,
        "SELECT period_start, platform, workspace, user_id, amount_uc FROM ledger"
        " WHERE job_id = ? AND kind = 'hold'",
        (job_id,),
    )
    if hold is None:
        return False
    settled = await one(
        tx, "SELECT 1 FROM ledger WHERE job_id = ? AND kind IN ('capture', 'release')", (job_id,)
    )
    if settled is not None:
        return False
    kind = "release" if charge_uc is None else "capture"
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user_id, kind, amount_uc,"
        " settles_uc, job_id, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now_iso(),
            hold[0],
            hold[1],
            hold[2],
            hold[3],
            kind,
            charge_uc or 0,
            int(hold[4]),
            job_id,
            actor,
        ),
    )
    change = Sums(granted_uc=0, used_uc=charge_uc or 0, held_uc=-int(hold[4]), jobs=0)
    await _add_to_totals(tx, hold[0], hold[1], hold[2], hold[3], change)
    return True


async def write_grant(
    tx: Tx, who: Requester, amount_uc: int, period_key: str, actor: str, reason: str
) -> None:
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user_id, kind, amount_uc,"
        " actor, reason) VALUES (?, ?, ?, ?, ?, 'grant', ?, ?, ?)",
        (now_iso(), period_key, who.platform, who.workspace, who.user, amount_uc, actor, reason),
    )
    change = Sums(granted_uc=amount_uc, used_uc=0, held_uc=0, jobs=0)
    await _add_to_totals(tx, period_key, who.platform, who.workspace, who.user, change)


async def write_audit(
    tx: Tx, actor: str, action: str, target: str, amount_uc: int | None, reason: str = ""
) -> None:
    await tx.execute(
        "INSERT INTO audit (at, actor, action, target, amount_uc, reason)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now_iso(), actor, action, target, amount_uc, reason),
    )


async def audit_entries(tx: Tx) -> list[dict[str, object]]:
    found = await rows(
        tx, "SELECT at, actor, action, target, amount_uc, reason FROM audit ORDER BY id"
    )
    return [dict(r) for r in found]


async def charge_mismatches(tx: Tx, tolerance_uc: int, per_mille: int) -> tuple[int, int, int, int]:
    """Captures whose amount differs from the hold they settle by more than
    max(`tolerance_uc`, hold × `per_mille` / 1000): (count over, credits over in uc, count
    under, credits under in uc). Integer arithmetic only."""
    row = await one(
        tx,
        "SELECT"
        " COALESCE(SUM(CASE WHEN amount_uc > settles_uc THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN amount_uc > settles_uc THEN amount_uc - settles_uc"
        "   ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN amount_uc < settles_uc THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN amount_uc < settles_uc THEN settles_uc - amount_uc"
        "   ELSE 0 END), 0)"
        " FROM ledger WHERE kind = 'capture'"
        " AND ABS(amount_uc - settles_uc) * 1000 > CASE WHEN CAST(? AS BIGINT) * 1000"
        " > settles_uc * CAST(? AS BIGINT) THEN CAST(? AS BIGINT) * 1000"
        " ELSE settles_uc * CAST(? AS BIGINT) END",
        (tolerance_uc, per_mille, tolerance_uc, per_mille),
    )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


@dataclass(frozen=True)
class CaptureRow:
    job_id: str
    at: str
    amount_uc: int
    held_uc: int


async def captures_between(tx: Tx, since: str, until: str) -> list[CaptureRow]:
    """Every capture written in (since, until], oldest first (ISO UTC timestamps)."""
    found = await rows(
        tx,
        "SELECT job_id, at, amount_uc, settles_uc FROM ledger"
        " WHERE kind = 'capture' AND at > ? AND at <= ? ORDER BY at",
        (since, until),
    )
    return [CaptureRow(r[0], r[1], int(r[2]), int(r[3])) for r in found]
