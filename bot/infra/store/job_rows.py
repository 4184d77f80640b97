"""SQL on the `jobs` table. Only `bot.services.jobs` (the job book) writes through this module.

Invariants:
- A status change is compare-and-set (`UPDATE … WHERE status IN (…)`): two actors racing
  (a cancel and a delivery) cannot both win. Which changes are allowed is the job book's
  transition table; this module only executes them.
- Column names in an update come from `WRITABLE`, never from a caller's string: an unknown
  name is a programming error (`ValueError`), not SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.domain.models import Job, JobStatus, Requester, Surface, VideoRequest
from bot.infra.store.engine import Row, Tx, now_iso, one, parse_ts, rows

COLUMNS = (
    "id, platform, workspace, user_id, user_name, status, model, prompt, duration, aspect_ratio, "
    "request_json, surface_json, progress, task_id, estimated_seconds, reserved_uc, charged_uc, "
    "error_code, error, result_url, media_path, media_size, period_start, parent_job_id, "
    "created_at, updated_at, submitted_at, completed_at, finished_at, queued, queue_position, "
    "roles_json, delivery_attempts, told_at, tell_attempts, submit_started_at, pricing_version"
)
WRITABLE = frozenset(
    {
        "status",
        "progress",
        "task_id",
        "estimated_seconds",
        "charged_uc",
        "error_code",
        "error",
        "result_url",
        "media_path",
        "media_size",
        "submitted_at",
        "completed_at",
        "finished_at",
        "queued",
        "queue_position",
        "surface_json",
        "told_at",
        "submit_started_at",
        "lease_owner",
        "lease_until",
        "released_at",
    }
)
OPEN = (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.DELIVERING)


def new_job_id() -> str:
    """Sortable and unguessable: milliseconds since epoch (hex) + 40 random bits."""
    millis = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return f"j{millis:011x}{secrets.token_hex(5)}"


def requester_of_row(row: Row) -> Requester:
    """The requester columns shared by `jobs` and `approvals`."""
    return Requester(
        platform=row["platform"],
        workspace=row["workspace"],
        user=row["user_id"],
        display_name=row["user_name"],
        roles=tuple(json.loads(row["roles_json"] or "[]")),
    )


def row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"],
        requester=requester_of_row(row),
        request=VideoRequest.model_validate_json(row["request_json"]),
        surface=Surface.model_validate_json(row["surface_json"]),
        status=JobStatus(row["status"]),
        progress=row["progress"],
        task_id=row["task_id"],
        reserved_uc=row["reserved_uc"],
        charged_uc=row["charged_uc"],
        error_code=row["error_code"],
        error=row["error"],
        estimated_seconds=row["estimated_seconds"],
        result_url=row["result_url"],
        media_path=row["media_path"],
        media_size=row["media_size"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        submitted_at=parse_ts(row["submitted_at"]),
        finished_at=parse_ts(row["finished_at"]),
        parent_job_id=row["parent_job_id"],
        queued=bool(row["queued"]),
        queue_position=row["queue_position"],
        completed_at=parse_ts(row["completed_at"]),
        delivery_attempts=row["delivery_attempts"],
        told_at=parse_ts(row["told_at"]),
        tell_attempts=row["tell_attempts"],
        submit_started_at=parse_ts(row["submit_started_at"]),
        pricing_version=row["pricing_version"],
    )


async def insert(
    tx: Tx,
    job_id: str,
    who: Requester,
    request: VideoRequest,
    surface: Surface,
    reserved_uc: int,
    period_key: str,
    parent_job_id: str | None,
    pricing_version: str | None = None,
) -> None:
    """A new job: pending and queued (the dispatcher releases it when a slot is free);
    `pricing_version` names the price list that priced its hold."""
    stamp = now_iso()
    await tx.execute(
        "INSERT INTO jobs (id, platform, workspace, user_id, user_name, status, model, prompt,"
        " duration, aspect_ratio, request_json, surface_json, reserved_uc, period_start,"
        " parent_job_id, created_at, updated_at, queued, roles_json, pricing_version)"
        " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        (
            job_id,
            who.platform,
            who.workspace,
            who.user,
            who.display_name,
            request.model,
            request.prompt,
            request.duration,
            request.aspect_ratio,
            request.model_dump_json(),
            surface.model_dump_json(),
            reserved_uc,
            period_key,
            parent_job_id,
            stamp,
            stamp,
            json.dumps(list(who.roles)),
            pricing_version,
        ),
    )


#: The fence inside a statement: no other replica holds the job's lease (`?`: the writer).
_NOT_ANOTHERS = " AND (lease_owner IS NULL OR lease_owner = ?)"


async def update(
    tx: Tx,
    job_id: str,
    while_in: Iterable[JobStatus] | None,
    fields: dict[str, Any],
    *,
    holder: str | None = None,
) -> bool:
    """Set `fields` if the job's status is one of `while_in` (any when None) and, with
    `holder`, while nobody else holds its lease (the fence inside the statement); True if it
    did."""
    unknown = set(fields) - WRITABLE
    if unknown:
        raise ValueError(f"not a writable job column: {', '.join(sorted(unknown))}")
    names = sorted(fields)
    assignments = ", ".join(f"{name} = ?" for name in names)  # names from WRITABLE only
    params: list[Any] = [_db_value(fields[name]) for name in names]
    sql = f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ?"
    params += [now_iso(), job_id]
    if while_in is not None:
        states = [str(s) for s in while_in]
        sql += f" AND status IN ({', '.join('?' for _ in states)})"
        params.extend(states)
    if holder is not None:
        sql += _NOT_ANOTHERS
        params.append(holder)
    cur = await tx.execute(sql, params)
    return cur.rowcount == 1


async def count_delivery_attempt(tx: Tx, job_id: str, *, holder: str | None = None) -> bool:
    """One more delivery attempt; with `holder`, while nobody else holds the lease (`update`)."""
    sql = "UPDATE jobs SET delivery_attempts = delivery_attempts + 1, updated_at = ? WHERE id = ?"
    params: list[Any] = [now_iso(), job_id]
    if holder is not None:
        sql += _NOT_ANOTHERS
        params.append(holder)
    cur = await tx.execute(sql, params)
    return cur.rowcount == 1


async def count_tell_attempt(tx: Tx, job_id: str, ended: Iterable[JobStatus]) -> bool:
    """One more attempt to tell how the job ended, if it ended and was not told yet."""
    states = [str(s) for s in ended]
    cur = await tx.execute(
        "UPDATE jobs SET tell_attempts = tell_attempts + 1, updated_at = ?"
        f" WHERE id = ? AND told_at IS NULL AND status IN ({', '.join('?' for _ in states)})",
        (now_iso(), job_id, *states),
    )
    return cur.rowcount == 1


async def amounts(tx: Tx, job_id: str) -> tuple[int, int | None] | None:
    """(reserved_uc, charged_uc) of a job, or None when there is no such job."""
    row = await one(tx, "SELECT reserved_uc, charged_uc FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        return None
    return int(row[0]), None if row[1] is None else int(row[1])


async def get(tx: Tx, job_id: str) -> Job | None:
    row = await one(tx, f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,))
    return None if row is None else row_to_job(row)


async def for_task(tx: Tx, task_id: str) -> Job | None:
    row = await one(tx, f"SELECT {COLUMNS} FROM jobs WHERE task_id = ?", (task_id,))
    return None if row is None else row_to_job(row)


async def untold_endings(tx: Tx, since: dt.datetime, ended: Iterable[JobStatus]) -> list[Job]:
    states = [str(s) for s in ended]
    found = await rows(
        tx,
        f"SELECT {COLUMNS} FROM jobs WHERE status IN ({', '.join('?' for _ in states)})"
        " AND told_at IS NULL AND finished_at >= ? ORDER BY finished_at",
        (*states, since.isoformat(timespec="milliseconds")),
    )
    return [row_to_job(r) for r in found]


async def unfinished(tx: Tx) -> list[Job]:
    found = await rows(
        tx,
        f"SELECT {COLUMNS} FROM jobs WHERE status IN (?, ?, ?) ORDER BY created_at",
        tuple(str(s) for s in OPEN),
    )
    return [row_to_job(r) for r in found]


async def ended_with_task(tx: Tx, since: str, until: str, limit: int) -> list[Job]:
    """Terminal jobs that reached EvoLink (a task id) and ended in [since, until], oldest
    first, at most `limit`."""
    found = await rows(
        tx,
        f"SELECT {COLUMNS} FROM jobs WHERE task_id IS NOT NULL AND finished_at IS NOT NULL"
        " AND finished_at >= ? AND finished_at <= ? ORDER BY finished_at, id LIMIT ?",
        (since, until, limit),
    )
    return [row_to_job(r) for r in found]


async def recent(
    tx: Tx,
    *,
    platform: str | None = None,
    workspace: str | None = None,
    user: str | None = None,
    limit: int = 20,
) -> list[Job]:
    clauses, params = where(platform=platform, workspace=workspace, user_id=user)
    found = await rows(
        tx,
        f"SELECT {COLUMNS} FROM jobs {clauses} ORDER BY created_at DESC, id DESC LIMIT ?",
        (*params, limit),
    )
    return [row_to_job(r) for r in found]


@dataclass(frozen=True)
class WaitingRow:
    job_id: str
    platform: str
    workspace: str
    user: str
    created_at: str
    queue_position: int | None


async def waiting(tx: Tx) -> list[WaitingRow]:
    """Queued jobs, oldest first."""
    found = await rows(
        tx,
        "SELECT id, platform, workspace, user_id, created_at, queue_position FROM jobs"
        " WHERE status = 'pending' AND queued = 1 ORDER BY created_at, id",
    )
    return [WaitingRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in found]


async def in_flight_by_user(tx: Tx) -> list[tuple[str, str, str, int]]:
    """(platform, workspace, user, jobs) of jobs that hold a slot: released or submitted."""
    found = await rows(
        tx,
        "SELECT platform, workspace, user_id, COUNT(*) FROM jobs WHERE status = 'submitted'"
        " OR (status = 'pending' AND queued = 0) GROUP BY platform, workspace, user_id",
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in found]


async def last_releases(tx: Tx) -> dict[str, str]:
    """ "platform:workspace:user" → when the queue last released one of their jobs (ISO UTC),
    for the users who have jobs waiting (the fair queue's round-robin memory)."""
    found = await rows(
        tx,
        "SELECT j.platform, j.workspace, j.user_id, MAX(j.released_at) FROM jobs j"
        " WHERE j.released_at IS NOT NULL AND EXISTS (SELECT 1 FROM jobs w"
        " WHERE w.status = 'pending' AND w.queued = 1 AND w.platform = j.platform"
        " AND w.workspace = j.workspace AND w.user_id = j.user_id)"
        " GROUP BY j.platform, j.workspace, j.user_id",
    )
    return {f"{r[0]}:{r[1]}:{r[2]}": str(r[3]) for r in found}


# -- job leases (replicas on one database: bot/services/job_leases.py) ------------------------

#: A job some replica must follow: released or submitted or being delivered (not queued).
_FOLLOWABLE = "(status IN ('submitted', 'delivering') OR (status = 'pending' AND queued = 0))"
FOLLOWABLE = _FOLLOWABLE  # the open jobs a replica may follow (also job_lease_rows.py's)
#: A lease nobody holds at `?` (now). A claim's UPDATE checks it again: renewals do not take
#: the write lock, so a lease renewed between a claim's read and its write stays its holder's.
FREE = "(lease_owner IS NULL OR lease_until IS NULL OR lease_until < ?)"


async def claim(
    tx: Tx, owner: str, until: str, now: str, limit: int, *, any_owner: bool = False
) -> list[str]:
    """Lease to `owner` until `until` the oldest open jobs whose lease is empty or expired at
    `now` (any lease when `any_owner`), at most `limit`; their ids. Inside `transaction()`:
    the one-writer rule makes the read and the update one step."""
    free = "" if any_owner else f" AND {FREE}"
    params: tuple[Any, ...] = () if any_owner else (now,)
    found = await rows(
        tx,
        f"SELECT id FROM jobs WHERE {_FOLLOWABLE}{free} ORDER BY created_at, id LIMIT ?",
        (*params, limit),
    )
    ids = [str(r[0]) for r in found]
    if not ids:
        return []
    taken = await rows(
        tx,
        f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN"
        f" ({', '.join('?' for _ in ids)}){free} RETURNING id",
        (owner, until, *ids, *params),
    )
    got = {str(r[0]) for r in taken}
    return [job for job in ids if job in got]


async def renew(tx: Tx, owner: str, until: str) -> set[str]:
    """Extend `owner`'s leases of open jobs to `until`; the ids it still holds. One statement
    whose WHERE is its whole condition (a row write: `Store.row_write`)."""
    found = await rows(
        tx,
        f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND {_FOLLOWABLE} RETURNING id",
        (until, owner),
    )
    return {str(r[0]) for r in found}


async def release_leases(tx: Tx, owner: str) -> int:
    cur = await tx.execute(
        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,)
    )
    return cur.rowcount


async def lease_of(tx: Tx, job_id: str) -> tuple[str | None, str | None]:
    """(lease_owner, lease_until) of a job; (None, None) when there is no such job."""
    row = await one(tx, "SELECT lease_owner, lease_until FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        return None, None
    return row[0], row[1]


async def queued_reserved_uc(tx: Tx, who: Requester) -> int:
    row = await one(
        tx,
        "SELECT COALESCE(SUM(reserved_uc), 0) FROM jobs WHERE platform = ?"
        " AND workspace = ? AND user_id = ? AND status = 'pending' AND queued = 1",
        (who.platform, who.workspace, who.user),
    )
    return int(row[0]) if row else 0


async def count_by_status(tx: Tx) -> dict[str, int]:
    found = await rows(tx, "SELECT status, COUNT(*) FROM jobs GROUP BY status")
    return {str(r[0]): int(r[1]) for r in found}


async def period_status_counts(
    tx: Tx, period_key: str, platform: str | None, workspace: str | None
) -> dict[tuple[tuple[str, str, str], str], int]:
    """((platform, workspace, user), status) → jobs accepted in the period."""
    clauses, params = where(period_start=period_key, platform=platform, workspace=workspace)
    found = await rows(
        tx,
        f"SELECT platform, workspace, user_id, status, COUNT(*) FROM jobs {clauses}"
        " GROUP BY platform, workspace, user_id, status",
        params,
    )
    return {((r[0], r[1], r[2]), str(r[3])): int(r[4]) for r in found}


async def display_names(
    tx: Tx, period_key: str, platform: str | None, workspace: str | None
) -> dict[tuple[str, str, str], str]:
    """The newest display name each requester had in the period's jobs."""
    clauses, params = where(period_start=period_key, platform=platform, workspace=workspace)
    found = await rows(
        tx,
        f"SELECT platform, workspace, user_id, user_name FROM jobs {clauses}"
        " AND user_name IS NOT NULL AND user_name != '' ORDER BY created_at",
        params,
    )
    return {(r[0], r[1], r[2]): str(r[3]) for r in found}


def where(**filters: str | None) -> tuple[str, list[str]]:
    """A WHERE clause over the given equality filters (None: no filter); the names are this
    module's own keyword arguments, never a caller's string."""
    parts = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return ("WHERE " + " AND ".join(parts) if parts else "WHERE 1 = 1", params)


def _db_value(value: Any) -> Any:
    if isinstance(value, Surface | VideoRequest):
        return value.model_dump_json()
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, JobStatus):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value
