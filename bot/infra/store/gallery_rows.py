"""SQL of the web gallery (bot/gallery/): reads of `jobs` for its pages, and `gallery_links`.

Invariants:
- Nothing here writes a job row: the gallery only reads `jobs` (the job book owns its writes).
- Every read of jobs is scoped to one (platform, workspace): the scope is a required argument,
  so no gallery query can list another workspace's jobs.
- `use_link` records a link id once (`INSERT … ON CONFLICT DO NOTHING`, one statement, the same
  text on SQLite and PostgreSQL): of two replicas opening the same link at once, exactly one
  sees a new row; a link id already there was used.
- Filters are parameters, never SQL text; the prompt filter is a case-insensitive substring
  (`LOWER(prompt) LIKE ? ESCAPE '!'`, its `%`, `_` and `!` escaped).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.domain.models import Job
from bot.infra.store.engine import Tx, rows
from bot.infra.store.job_rows import COLUMNS, row_to_job

#: Statuses the viewer sees of their own jobs besides the delivered ones.
OWN_STATUSES = ("pending", "submitted", "delivering", "failed")


@dataclass(frozen=True)
class GalleryFilter:
    """What the gallery list is narrowed to (None / empty: no narrowing)."""

    user: str | None = None
    model: str | None = None
    text: str | None = None


def _like(text: str) -> str:
    escaped = text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


async def delivered(
    tx: Tx,
    platform: str,
    workspace: str,
    narrow: GalleryFilter,
    *,
    limit: int,
    offset: int,
) -> list[Job]:
    """The workspace's delivered jobs, newest delivery first, narrowed by `narrow`."""
    sql = f"SELECT {COLUMNS} FROM jobs WHERE platform = ? AND workspace = ? AND status = ?"
    params: list[object] = [platform, workspace, "delivered"]
    if narrow.user:
        sql += " AND user_id = ?"
        params.append(narrow.user)
    if narrow.model:
        sql += " AND model = ?"
        params.append(narrow.model)
    if narrow.text:
        sql += " AND LOWER(prompt) LIKE ? ESCAPE '!'"
        params.append(_like(narrow.text))
    sql += " ORDER BY finished_at DESC, id DESC LIMIT ? OFFSET ?"
    params += [limit, offset]
    return [row_to_job(r) for r in await rows(tx, sql, params)]


async def own_unfinished(
    tx: Tx, platform: str, workspace: str, user: str, *, limit: int
) -> list[Job]:
    """The viewer's own running and failed jobs, newest first."""
    marks = ", ".join("?" for _ in OWN_STATUSES)
    found = await rows(
        tx,
        f"SELECT {COLUMNS} FROM jobs WHERE platform = ? AND workspace = ? AND user_id = ?"
        f" AND status IN ({marks}) ORDER BY created_at DESC, id DESC LIMIT ?",
        (platform, workspace, user, *OWN_STATUSES, limit),
    )
    return [row_to_job(r) for r in found]


async def people(tx: Tx, platform: str, workspace: str) -> list[tuple[str, str]]:
    """(user id, a display name) of everyone with a delivered video in the workspace."""
    found = await rows(
        tx,
        "SELECT user_id, MAX(COALESCE(user_name, '')) FROM jobs"
        " WHERE platform = ? AND workspace = ? AND status = ? GROUP BY user_id ORDER BY user_id",
        (platform, workspace, "delivered"),
    )
    return [(str(r[0]), str(r[1]) or str(r[0])) for r in found]


async def models(tx: Tx, platform: str, workspace: str) -> list[str]:
    """The models of the workspace's delivered videos."""
    found = await rows(
        tx,
        "SELECT DISTINCT model FROM jobs WHERE platform = ? AND workspace = ? AND status = ?"
        " ORDER BY model",
        (platform, workspace, "delivered"),
    )
    return [str(r[0]) for r in found]


async def use_link(tx: Tx, link_id: str, now: dt.datetime, forget_before: dt.datetime) -> bool:
    """Record `link_id` as used now; False when it was used before. Rows of links that can no
    longer be opened anyway (used before `forget_before`) are deleted on the way."""
    await tx.execute("DELETE FROM gallery_links WHERE used_at < ?", (forget_before.isoformat(),))
    cursor = await tx.execute(
        "INSERT INTO gallery_links (link_id, used_at) VALUES (?, ?)"
        " ON CONFLICT (link_id) DO NOTHING",
        (link_id, now.isoformat()),
    )
    return cursor.rowcount == 1
