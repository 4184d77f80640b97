"""The job book: the one owner of job rows. Every change of a job's state goes through it,
each with its ledger effect (bot/services/ledger.py) in the same transaction.

A job's life (the statuses users and `sora-bot admin jobs` see; docs/ARCHITECTURE.md):

    pending ──▶ submitted ──▶ delivering ──▶ delivered      (capture what EvoLink billed)
       │            │                    └─▶ failed         (capture what EvoLink kept, if any)
       │            └──▶ failed
       └──▶ failed | cancelled                              (release the hold)

Invariants:
- `TRANSITIONS` (bot/domain/lifecycle.py) is the only statement of which status may follow which;
  `_move` is the only function that changes a status, and it refuses any change the table
  does not list. Each move
  is compare-and-set on the current status, so of two racing actors exactly one wins.
- `accept` writes the job row and its hold in one `BEGIN IMMEDIATE` transaction, or nothing.
- A terminal move settles the hold in the same transaction, so a terminal job never holds
  credits and a hold settles once. A delivered job's charge is `Job.charge` (what EvoLink
  billed, else the quote); a failed job is charged what EvoLink reports it kept (normally
  nothing: a release). A charge that differs from the hold beyond `Ledger.charge_differs`
  is logged as a warning (and counted in /metrics from the ledger).
- Cancel only what costs nothing: `finish_cancelled` succeeds only while `Job.cancellable`
  (pending, and no submit on its way), decided in the same `BEGIN IMMEDIATE` transaction as
  the tracker's `begin_submit` claim, so of a cancel and a submit exactly one wins.
- Leases (replicas on one database; bot/services/job_leases.py): a job book made with a
  `replica` id FENCES the tracker's writes that matter — `begin_submit`, `mark_submitted`,
  progress, `mark_delivering`, the delivery attempt record, the media record,
  `finish_delivered`, `finish_failed` — with the job's lease: each checks, inside its own
  transaction, that no other replica holds the lease, and raises `LeaseLost` otherwise,
  writing nothing. The single-row ones (`mark_submitted`, progress, `mark_delivering`, the
  delivery attempt and media records) carry the check in the UPDATE's WHERE and run as row
  writes outside the one-writer rule (`Store.row_write`); the others read first and hold the
  write lock. A replica that lost a job (it was presumed dead and another took it over) can
  therefore no longer change it. The dispatcher's decision and its releases from the queue
  are one transaction (`release_fitting`), each released job leased to this replica in it (up
  to its fair share; the rest released unleased, for a claim). A
  terminal move clears the lease. Without a `replica` (the CLI) nothing is fenced.
- Nothing outside this module writes a job row (SQL in bot/infra/store/job_rows.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from bot.domain.errors import JobNotFound, JobStateError
from bot.domain.lifecycle import ENDED_BADLY, D, P, S, sources_of
from bot.domain.models import (
    Job,
    JobStatus,
    Requester,
    Surface,
    VideoRequest,
    fmt_credits,
    to_uc,
)
from bot.infra.store import Store, Tx, now_iso
from bot.infra.store import job_rows as sql
from bot.services.job_queue import JobQueue, LeaseLost
from bot.services.ledger import Ledger

log = logging.getLogger(__name__)

__all__ = ["JobBook", "LeaseLost"]


class JobBook(JobQueue):
    def __init__(self, store: Store, ledger: Ledger, *, replica: str | None = None) -> None:
        self.store = store
        self.ledger = ledger
        #: The replica whose tracker writes through this book (None: no fencing, the CLI).
        self.replica = replica

    # -- reading -----------------------------------------------------------------------------

    async def job(self, job_id: str) -> Job:
        async with self.store.glance() as tx:  # the most frequent read: one statement
            job = await sql.get(tx, job_id)
        if job is None:
            raise JobNotFound(f"There is no job {job_id!r}.")
        return job

    async def job_for_task(self, task_id: str) -> Job | None:
        async with self.store.glance() as tx:
            return await sql.for_task(tx, task_id)

    async def recent_jobs(
        self,
        *,
        platform: str | None = None,
        workspace: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[Job]:
        async with self.store.reading() as tx:
            return await sql.recent(
                tx, platform=platform, workspace=workspace, user=user, limit=limit
            )

    async def unfinished_jobs(self) -> list[Job]:
        async with self.store.reading() as tx:
            return await sql.unfinished(tx)

    async def ended_with_task(self, since: str, until: str, limit: int) -> list[Job]:
        """Jobs EvoLink had a task for that ended in [since, until] (ISO UTC), oldest first."""
        async with self.store.reading() as tx:
            return await sql.ended_with_task(tx, since, until, limit)

    async def untold_endings(self, since: dt.datetime) -> list[Job]:
        """Failed or cancelled jobs whose user was never told (a crash right after the end)."""
        async with self.store.reading() as tx:
            return await sql.untold_endings(tx, since, ENDED_BADLY)

    async def count_by_status(self) -> dict[str, int]:
        async with self.store.reading() as tx:
            found = await sql.count_by_status(tx)
        return {status.value: found.get(status.value, 0) for status in JobStatus}

    async def period_status_counts(
        self, period_key: str, platform: str | None, workspace: str | None
    ) -> dict[tuple[tuple[str, str, str], str], int]:
        async with self.store.reading() as tx:
            return await sql.period_status_counts(tx, period_key, platform, workspace)

    async def display_names(
        self, period_key: str, platform: str | None, workspace: str | None
    ) -> dict[tuple[str, str, str], str]:
        async with self.store.reading() as tx:
            return await sql.display_names(tx, period_key, platform, workspace)

    # -- admission ---------------------------------------------------------------------------

    async def accept(
        self,
        who: Requester,
        request: VideoRequest,
        surface: Surface,
        quote: Decimal,
        *,
        parent_job_id: str | None = None,
        pricing_version: str | None = None,
    ) -> Job:
        """Insert the job and hold its quote, atomically; raises BudgetError when it won't fit.
        `pricing_version` (the price list that made the quote) is recorded with the job.
        Its transaction is the store's `admission()`: ordered by the ledger totals' row locks."""
        async with self.store.admission() as tx:
            job_id = await self.accept_in(
                tx,
                who,
                request,
                surface,
                quote,
                parent_job_id=parent_job_id,
                pricing_version=pricing_version,
            )
        return await self.job(job_id)

    async def accept_in(
        self,
        tx: Tx,
        who: Requester,
        request: VideoRequest,
        surface: Surface,
        quote: Decimal,
        *,
        parent_job_id: str | None = None,
        force: bool = False,
        pricing_version: str | None = None,
    ) -> str:
        """`accept` inside the caller's transaction (approvals); returns the new job id.

        The job starts queued: the dispatcher releases it when a slot is free.
        """
        job_id = sql.new_job_id()
        # The workspace's settings as committed (its period, its allowance and team budget
        # defaults): one indexed read in the admission's transaction.
        settings = await self.ledger.settings_in(tx, who.platform, who.workspace)
        period = self.ledger.period_at(settings)
        await sql.insert(
            tx,
            job_id,
            who,
            request,
            surface,
            to_uc(quote),
            period.key,
            parent_job_id,
            pricing_version,
        )
        await self.ledger.hold_in(
            tx, who, job_id, to_uc(quote), period, force=force, settings=settings
        )
        return job_id

    # -- the life of a job ---------------------------------------------------------------------

    async def begin_submit(self, job_id: str) -> bool:
        """The tracker is about to send the job to EvoLink: from now on it cannot be cancelled.
        False when the job is no longer pending (cancelled meanwhile): do not send it."""
        async with self.store.transaction() as tx:
            await self._fence(tx, job_id)
            return await sql.update(tx, job_id, (P,), {"submit_started_at": now_iso()})

    async def submit_not_taken(self, job_id: str) -> None:
        """EvoLink refused the submit before taking the task (429): cancellable again."""
        await self._update(job_id, (P,), fenced=True, submit_started_at=None)

    async def mark_submitted(self, job_id: str, task_id: str, estimated: int | None) -> bool:
        """EvoLink took the task (after `begin_submit`, so no cancel can come in between): a
        self-fenced row write."""
        async with self.store.row_write() as tx:
            return await self._move(
                tx,
                job_id,
                S,
                fenced=True,
                queued=0,
                queue_position=None,
                task_id=task_id,
                estimated_seconds=estimated,
                submitted_at=now_iso(),
            )

    async def record_progress(self, job_id: str, progress: int) -> None:
        """The progress EvoLink reported, while the job is submitted and its lease not another
        replica's (LeaseLost). One self-fenced UPDATE outside the one-writer rule
        (`Store.row_write`): the most frequent write of a busy deployment queues behind
        nothing but writes of its own row."""
        await self._update(job_id, (S,), fenced=True, progress=progress)

    async def mark_delivering(self, job_id: str, result_url: str, charge: Decimal | None) -> bool:
        """EvoLink finished the task; `charge` is what it billed (None: not reported). A
        self-fenced row write (`_move` with `fenced`), like the delivery attempt and media
        records after it: a burst of finishing jobs queues behind no other writer."""
        async with self.store.row_write() as tx:
            return await self._move(
                tx,
                job_id,
                D,
                fenced=True,
                progress=100,
                result_url=result_url,
                charged_uc=None if charge is None else to_uc(charge),
                completed_at=now_iso(),
            )

    async def note_delivery_attempt(self, job_id: str) -> None:
        """Recorded before the platform is asked to post the video (see Job.delivery_attempts);
        a self-fenced row write."""
        async with self.store.row_write() as tx:
            if not await sql.count_delivery_attempt(tx, job_id, holder=self.replica):
                await self._fence(tx, job_id)

    async def record_media(self, job_id: str, path: str, size: int) -> None:
        await self._update(job_id, None, fenced=True, media_path=path, media_size=size)

    async def finish_delivered(self, job_id: str) -> bool:
        """delivering → delivered and capture the charge; False if it was already recorded."""
        async with self.store.transaction() as tx:
            job = await sql.get(tx, job_id)
            if job is None:
                return False
            if not job.status.terminal:
                await self._fence(tx, job_id)
            moved = await self._move(
                tx,
                job_id,
                JobStatus.DELIVERED,
                charged_uc=job.charge_uc,
                finished_at=now_iso(),
            )
            if moved:
                await self.ledger.settle_in(tx, job_id, charge_uc=job.charge_uc)
        if moved:
            self._note_charge(job, job.charge_uc)
        return moved

    async def finish_failed(
        self, job_id: str, code: str | None, reason: str, kept: Decimal | None = None
    ) -> bool:
        """→ failed. `kept` is what EvoLink reports it kept for the failed task: captured
        (the rest of the hold released by the same settlement); None or 0 releases it all."""
        kept_uc = None if kept is None or to_uc(kept) <= 0 else to_uc(kept)
        async with self.store.transaction() as tx:
            job = await sql.get(tx, job_id)
            if job is not None and not job.status.terminal:
                await self._fence(tx, job_id)
            moved = await self._move(
                tx,
                job_id,
                JobStatus.FAILED,
                error_code=code,
                error=reason,
                charged_uc=kept_uc,
                finished_at=now_iso(),
            )
            if moved:
                await self.ledger.settle_in(tx, job_id, charge_uc=kept_uc)
        if moved and job is not None and kept_uc is not None:
            self._note_charge(job, kept_uc)
        return moved

    async def finish_cancelled(self, job_id: str, actor: str) -> Job:
        """→ cancelled and release the hold, only while `Job.cancellable`; otherwise
        `JobStateError` in plain words (a job EvoLink has is rendered and charged)."""
        moved = False
        async with self.store.transaction() as tx:
            current = await sql.get(tx, job_id)
            if current is not None and current.cancellable:
                moved = await self._move(
                    tx,
                    job_id,
                    JobStatus.CANCELLED,
                    error=f"cancelled by {actor}",
                    finished_at=now_iso(),
                )
            if moved:
                await self.ledger.settle_in(tx, job_id, charge_uc=None, actor=actor)
        job = await self.job(job_id)
        if not moved:
            if job.status == JobStatus.CANCELLED:
                return job
            raise JobStateError(_cannot_cancel(job))
        return job

    def _note_charge(self, job: Job, charge_uc: int) -> None:
        if self.ledger.charge_differs(job.reserved_uc, charge_uc):
            log.warning(
                "job %s: EvoLink charged %s credits, %s were held",
                job.id,
                fmt_credits(charge_uc),
                fmt_credits(job.reserved_uc),
            )

    async def save_surface(self, job_id: str, surface: Surface) -> None:
        await self._update(job_id, None, surface_json=surface.model_dump_json())

    # -- telling how it ended ------------------------------------------------------------------

    async def begin_telling(self, job_id: str) -> Job | None:
        """Count one more attempt to tell how the job ended (in SQL, before the port is
        called); the job as it is now, or None when it was already told or has not ended."""
        async with self.store.transaction() as tx:
            if not await sql.count_tell_attempt(tx, job_id, ENDED_BADLY):
                return None
            return await sql.get(tx, job_id)

    async def mark_told(self, job_id: str) -> None:
        await self._update(job_id, ENDED_BADLY, told_at=now_iso())

    # -- the two writers -----------------------------------------------------------------------

    async def _move(
        self, tx: Tx, job_id: str, target: JobStatus, *, fenced: bool = False, **fields: Any
    ) -> bool:
        """Change the status to `target` if the table allows it from the current one (a
        terminal status clears the lease: nobody follows an ended job). `fenced`: the lease
        condition is in the UPDATE itself (a row write needs no lock: `Store.row_write`);
        LeaseLost when another replica holds the job."""
        if target.terminal:
            fields = {**fields, "lease_owner": None, "lease_until": None}
        holder = self.replica if fenced else None
        values = {"status": target, **fields}
        moved = await sql.update(tx, job_id, sources_of(target), values, holder=holder)
        if not moved and fenced:
            await self._fence(tx, job_id)  # not moved: not allowed now, or not ours
        return moved

    async def _update(
        self,
        job_id: str,
        while_in: tuple[JobStatus, ...] | None,
        *,
        fenced: bool = False,
        **fields: Any,
    ) -> bool:
        """Change fields other than the status, while the job is in `while_in` (None: any);
        `fenced`: only while no other replica holds the job's lease (else LeaseLost). One
        self-contained UPDATE, so a row write (`Store.row_write`)."""
        if "status" in fields:
            raise ValueError("a status changes only through _move")
        holder = self.replica if fenced else None
        async with self.store.row_write() as tx:
            done = await sql.update(tx, job_id, while_in, fields, holder=holder)
            if not done and fenced:
                await self._fence(tx, job_id)
            return done


def _cannot_cancel(job: Job) -> str:
    if job.status == JobStatus.DELIVERING:
        return "This video is already finished and being posted; it can no longer be cancelled."
    if job.status in (P, S):
        return (
            "EvoLink is already rendering this video, so it can no longer be cancelled: "
            "it will be finished and charged."
        )
    return f"This job is already {job.status.value}; there is nothing to cancel."
