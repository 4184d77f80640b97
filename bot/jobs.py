"""The job book: every change of a job's state, each with its ledger effect, in one transaction.

A job's life (CONTRACT.md statuses):

    pending ──▶ submitted ──▶ delivering ──▶ delivered      (capture the charge)
       │            │                    └─▶ failed         (release the hold)
       └────────────┴──▶ failed | cancelled                 (release the hold)

Invariants:
- `accept` writes the job row and its hold in one `BEGIN IMMEDIATE` transaction, or nothing.
- Every transition is compare-and-set on the current status; the terminal ones settle the hold
  in the same transaction, so a terminal job never holds credits and a hold settles once.
- A delivered job's charge is EvoLink's `usage.credits_used` when given, else its quote.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import aiosqlite

from bot import ledger
from bot.errors import JobNotFound, JobStateError
from bot.models import Balance, Job, JobStatus, Requester, Surface, VideoRequest, from_mc, to_mc
from bot.periods import Period, period_containing, period_for
from bot.store import Store, new_job_id, now_iso, update_job_in

OPEN = (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.DELIVERING)
CANCELLABLE = (JobStatus.PENDING, JobStatus.SUBMITTED)


@dataclass(frozen=True)
class UsageRow:
    platform: str
    workspace: str
    user: str
    period_start: dt.date
    limit: Decimal
    granted: Decimal
    used: Decimal
    reserved: Decimal
    jobs: int
    failed: int = 0

    @property
    def available(self) -> Decimal:
        return self.limit + self.granted - self.used - self.reserved


class JobBook:
    def __init__(
        self,
        store: Store,
        *,
        default_limit: Decimal,
        default_team_budget: Decimal,
        period_kind: str,
        timezone: dt.tzinfo,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.default_limit_mc = to_mc(default_limit)
        self.default_team_mc = to_mc(default_team_budget)
        self.period_kind = period_kind
        self.timezone = timezone
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    def current_period(self) -> Period:
        return period_for(self._now(), self.period_kind, self.timezone)  # type: ignore[arg-type]

    def period_of(self, day: dt.date) -> Period:
        return period_containing(day, self.period_kind, self.timezone)  # type: ignore[arg-type]

    async def job(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(f"There is no job {job_id!r}.")
        return job

    # -- admission ---------------------------------------------------------------------------

    async def accept(
        self,
        who: Requester,
        request: VideoRequest,
        surface: Surface,
        quote: Decimal,
        *,
        parent_job_id: str | None = None,
    ) -> Job:
        """Insert the job and hold its quote, atomically; raises BudgetError when it won't fit."""
        async with self.store.transaction() as tx:
            job_id = await self.accept_in(
                tx, who, request, surface, quote, parent_job_id=parent_job_id
            )
        return await self.job(job_id)

    async def precheck(self, who: Requester, quote: Decimal) -> None:
        """The budget check alone, without holding (so a refusal costs no EvoLink call);
        `accept` repeats it atomically."""
        async with self.store.reading() as conn:
            await ledger.check_room(
                conn,
                who,
                to_mc(quote),
                self.current_period(),
                self.default_limit_mc,
                self.default_team_mc,
            )

    async def accept_in(
        self,
        tx: aiosqlite.Connection,
        who: Requester,
        request: VideoRequest,
        surface: Surface,
        quote: Decimal,
        *,
        parent_job_id: str | None = None,
        force: bool = False,
    ) -> str:
        """`accept` inside the caller's transaction (approvals); returns the new job id.

        The job starts queued: the dispatcher releases it when a slot is free.
        """
        job_id = new_job_id()
        quote_mc = to_mc(quote)
        period = self.current_period()
        stamp = now_iso()
        await tx.execute(
            "INSERT INTO jobs (id, platform, workspace, user, user_name, status, model, prompt,"
            " duration, aspect_ratio, request_json, surface_json, reserved_mc, period_start,"
            " parent_job_id, created_at, updated_at, queued, roles_json)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
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
                quote_mc,
                period.key,
                parent_job_id,
                stamp,
                stamp,
                json.dumps(list(who.roles)),
            ),
        )
        await ledger.admit(
            tx,
            who,
            job_id,
            quote_mc,
            period,
            default_limit_mc=self.default_limit_mc,
            default_team_mc=self.default_team_mc,
            force=force,
        )
        return job_id

    # -- transitions -------------------------------------------------------------------------

    async def mark_submitted(self, job_id: str, task_id: str, estimated: int | None) -> bool:
        return await self.store.transition(
            job_id,
            [JobStatus.PENDING],
            status=JobStatus.SUBMITTED,
            queued=0,
            queue_position=None,
            task_id=task_id,
            estimated_seconds=estimated,
            submitted_at=now_iso(),
        )

    async def record_progress(self, job_id: str, progress: int) -> None:
        await self.store.transition(job_id, [JobStatus.SUBMITTED], progress=progress)

    async def mark_delivering(self, job_id: str, result_url: str, charge: Decimal | None) -> bool:
        async with self.store.transaction() as tx:
            cur = await tx.execute("SELECT reserved_mc FROM jobs WHERE id = ?", (job_id,))
            row = await cur.fetchone()
            if row is None:
                return False
            charge_mc = int(row[0]) if charge is None else to_mc(charge)
            return await update_job_in(
                tx,
                job_id,
                [JobStatus.SUBMITTED],
                status=JobStatus.DELIVERING,
                progress=100,
                result_url=result_url,
                charged_mc=charge_mc,
                completed_at=now_iso(),
            )

    async def note_delivery_attempt(self, job_id: str) -> None:
        """Recorded before the platform is asked to post the video (see Job.delivery_attempts)."""
        async with self.store.transaction() as tx:
            await tx.execute(
                "UPDATE jobs SET delivery_attempts = delivery_attempts + 1 WHERE id = ?", (job_id,)
            )

    async def record_media(self, job_id: str, path: str, size: int) -> None:
        await self.store.update_job(job_id, media_path=path, media_size=size)

    async def finish_delivered(self, job_id: str) -> bool:
        """delivering → delivered and capture the charge; False if it was already recorded."""
        async with self.store.transaction() as tx:
            cur = await tx.execute(
                "SELECT charged_mc, reserved_mc FROM jobs WHERE id = ?", (job_id,)
            )
            row = await cur.fetchone()
            if row is None:
                return False
            charge_mc = int(row[0]) if row[0] is not None else int(row[1])
            moved = await update_job_in(
                tx,
                job_id,
                [JobStatus.DELIVERING],
                status=JobStatus.DELIVERED,
                charged_mc=charge_mc,
                finished_at=now_iso(),
            )
            if moved:
                await ledger.settle(tx, job_id, charge_mc=charge_mc)
            return moved

    async def finish_failed(self, job_id: str, code: str | None, reason: str) -> bool:
        async with self.store.transaction() as tx:
            moved = await update_job_in(
                tx,
                job_id,
                OPEN,
                status=JobStatus.FAILED,
                error_code=code,
                error=reason,
                charged_mc=None,
                finished_at=now_iso(),
            )
            if moved:
                await ledger.settle(tx, job_id, charge_mc=None)
            return moved

    async def finish_cancelled(self, job_id: str, actor: str) -> Job:
        async with self.store.transaction() as tx:
            moved = await update_job_in(
                tx,
                job_id,
                CANCELLABLE,
                status=JobStatus.CANCELLED,
                error=f"cancelled by {actor}",
                finished_at=now_iso(),
            )
            if moved:
                await ledger.settle(tx, job_id, charge_mc=None, actor=actor)
        job = await self.job(job_id)
        if not moved:
            if job.status == JobStatus.CANCELLED:
                return job
            raise JobStateError(_cannot_cancel(job))
        return job

    async def begin_telling(self, job_id: str) -> Job | None:
        """Count one more attempt to tell how the job ended (in SQL, before the port is
        called); the job as it is now, or None when it was already told or has not ended."""
        async with self.store.transaction() as tx:
            cur = await tx.execute(
                "UPDATE jobs SET tell_attempts = tell_attempts + 1, updated_at = ?"
                " WHERE id = ? AND told_at IS NULL AND status IN (?, ?)",
                (now_iso(), job_id, JobStatus.FAILED, JobStatus.CANCELLED),
            )
            if cur.rowcount != 1:
                return None
        return await self.job(job_id)

    async def mark_told(self, job_id: str) -> None:
        await self.store.update_job(job_id, told_at=now_iso())

    async def untold_endings(self, since: dt.datetime) -> list[Job]:
        return await self.store.untold_endings(since)

    async def unfinished_jobs(self) -> list[Job]:
        return await self.store.unfinished_jobs()

    async def save_surface(self, job_id: str, surface: Surface) -> None:
        await self.store.update_job(job_id, surface_json=surface.model_dump_json())

    # -- figures -----------------------------------------------------------------------------

    async def balance(self, who: Requester, *, period: Period | None = None) -> Balance:
        period = period or self.current_period()
        async with self.store.reading() as conn:
            mine = await ledger.user_figures(conn, who, period, self.default_limit_mc)
            team = await ledger.team_figures(
                conn, who.platform, who.workspace, period, self.default_team_mc
            )
            cur = await conn.execute(
                "SELECT COALESCE(SUM(reserved_mc), 0) FROM jobs WHERE platform = ?"
                " AND workspace = ? AND user = ? AND status = 'pending' AND queued = 1",
                (who.platform, who.workspace, who.user),
            )
            queued_row = await cur.fetchone()
        return Balance(
            requester=who,
            period_start=period.start,
            resets_at=period.resets_at,
            limit=from_mc(mine.limit_mc),
            granted=from_mc(mine.granted_mc),
            used=from_mc(mine.used_mc),
            held=from_mc(mine.held_mc),
            queued=from_mc(int(queued_row[0]) if queued_row else 0),
            team_budget=None if team is None else from_mc(team.limit_mc),
            team_used=None if team is None else from_mc(team.used_mc),
            team_held=None if team is None else from_mc(team.held_mc),
        )

    async def usage(
        self,
        *,
        platform: str | None = None,
        workspace: str | None = None,
        period: Period | None = None,
    ) -> list[UsageRow]:
        """One row per user with ledger entries in the period."""
        period = period or self.current_period()
        sql = (
            "SELECT platform, workspace, user,"
            " COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_mc END), 0),"
            " COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_mc END), 0),"
            " COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_mc END), 0)"
            "   - COALESCE(SUM(settles_mc), 0),"
            " COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)"
            " FROM ledger WHERE period_start = ?"
        )
        params: list[str] = [period.key]
        if platform is not None:
            sql += " AND platform = ?"
            params.append(platform)
        if workspace is not None:
            sql += " AND workspace = ?"
            params.append(workspace)
        sql += " GROUP BY platform, workspace, user ORDER BY platform, workspace, user"
        rows: list[UsageRow] = []
        async with self.store.reading() as conn:
            cur = await conn.execute(sql, params)
            for r in await cur.fetchall():
                who = Requester(platform=r[0], workspace=r[1], user=r[2])
                limit_mc = await ledger.user_limit_mc(conn, who, self.default_limit_mc)
                fcur = await conn.execute(
                    "SELECT COUNT(*) FROM jobs WHERE platform = ? AND workspace = ? AND user = ?"
                    " AND period_start = ? AND status = 'failed'",
                    (r[0], r[1], r[2], period.key),
                )
                failed = await fcur.fetchone()
                rows.append(
                    UsageRow(
                        platform=r[0],
                        workspace=r[1],
                        user=r[2],
                        period_start=period.start,
                        limit=from_mc(limit_mc),
                        granted=from_mc(int(r[3])),
                        used=from_mc(int(r[4])),
                        reserved=from_mc(int(r[5])),
                        jobs=int(r[6]),
                        failed=int(failed[0]) if failed else 0,
                    )
                )
        return rows


def _cannot_cancel(job: Job) -> str:
    if job.status == JobStatus.DELIVERING:
        return "This video is already finished and being posted; it can no longer be cancelled."
    return f"This job is already {job.status.value}; there is nothing to cancel."
