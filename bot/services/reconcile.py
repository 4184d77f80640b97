"""Reconciliation: the ledger against EvoLink's own account (`sora-bot admin reconcile`).

    reconciler = Reconciler(book, evolink)
    await reconciler.sample("tick")                       # GET /v1/credits → account_samples
    report = await reconciler.reconcile(period)           # compare, per period and per task

Two comparisons, over one budget period:
- **The account.** EvoLink's `used_credits` moves by what it bills the API key. Between the
  first and the last sample recorded in the period, that movement is compared with Σ captured
  by the ledger over the same time. Jobs still open then (EvoLink may have billed a task whose
  capture comes a moment later) are named, with their holds, as the allowance for that.
- **Each task.** For the period's jobs that reached EvoLink (at most `MAX_TASKS`, at most
  `CONCURRENCY` reads at once), the job's charge in the ledger is compared with what
  `GET /v1/tasks/{id}` reports now, where it reports a charge.

Invariants: reconciling never writes a ledger entry or a job row (it only reads them, and adds
an account sample); money is exact (integer uc / Decimal); an unreadable task or an account
EvoLink cannot be reached is reported, never raised. The sampler's alert — the account's spend
ahead of the ledger's beyond `AHEAD_ALERT` plus what open jobs may explain — goes to the admins
at most once a day (bot/services/oversight.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from bot.domain.errors import ProviderError
from bot.domain.models import Job, JobStatus, fmt_credits, from_uc, to_uc
from bot.domain.periods import Period
from bot.infra.evolink import EvoLinkClient
from bot.infra.store import account_rows
from bot.services.jobs import JobBook

log = logging.getLogger(__name__)

MAX_TASKS = 500
CONCURRENCY = 4
AHEAD_ALERT = Decimal(1)  # credits the account may run ahead of the ledger before an alert
AHEAD_ALERT_SHARE = Decimal("0.01")  # … or this share of the ledger's captures, if larger
SAMPLE_TIMEOUT = 5.0


@dataclass(frozen=True)
class TaskCheck:
    job_id: str
    task_id: str
    job_status: str
    ledger: Decimal  # what the ledger charged the job (0 when released)
    evolink: Decimal  # what EvoLink reports now

    @property
    def difference(self) -> Decimal:
        return self.evolink - self.ledger

    @property
    def cause(self) -> str:
        if self.ledger == 0:
            return "a missing charge: EvoLink billed a task the ledger charged nothing for"
        if self.evolink == 0:
            return "a refund: EvoLink gave back what the ledger captured"
        if self.evolink < self.ledger:
            return "a partial refund, or the quote was captured where EvoLink billed less"
        return "EvoLink billed more than the ledger captured (a late or changed charge)"


@dataclass
class Reconciliation:
    period_start: dt.date
    since: str | None  # the first sample of the period compared (ISO UTC)
    until: str | None  # the last one
    samples: int
    account_used: Decimal | None  # the movement of EvoLink's used_credits between them
    ledger_captured: Decimal  # Σ capture written between them
    open_jobs: int = 0  # jobs submitted or delivering now
    open_held: Decimal = Decimal(0)  # their holds
    tasks_checked: int = 0
    tasks_unreadable: int = 0
    tasks_skipped: int = 0  # beyond MAX_TASKS
    tasks: list[TaskCheck] = field(default_factory=list)  # only those that differ

    @property
    def difference(self) -> Decimal | None:
        """EvoLink's spend minus the ledger's (positive: EvoLink billed more)."""
        return None if self.account_used is None else self.account_used - self.ledger_captured

    @property
    def tasks_difference(self) -> Decimal:
        return sum((t.difference for t in self.tasks), Decimal(0))

    @property
    def unexplained(self) -> Decimal | None:
        """The account's lead that neither the differing tasks nor open jobs explain."""
        gap = self.difference
        if gap is None:
            return None
        gap -= self.tasks_difference
        if gap > 0:
            gap = max(gap - self.open_held, Decimal(0))
        return gap

    @property
    def causes(self) -> list[str]:
        found: list[str] = []
        gap = self.difference
        if gap is None:
            found.append(
                "not enough account samples in this period to compare (the bot records one at "
                "start, at stop and every ACCOUNT_SAMPLE_MINUTES)"
            )
        if self.tasks:
            found.append(
                f"{len(self.tasks)} task(s) where EvoLink's charge differs from the ledger's "
                f"({_signed(self.tasks_difference)} credits): see the list"
            )
        unexplained = self.unexplained
        if unexplained is not None and unexplained > 0:
            found.append(
                f"{fmt_credits(unexplained)} credits EvoLink billed that no job of this bot "
                "explains: another user or program with the same API key, or a charge the "
                "bot missed"
            )
        elif unexplained is not None and unexplained < 0:
            found.append(
                f"{fmt_credits(-unexplained)} credits the ledger captured beyond EvoLink's "
                "spend: a refund by EvoLink, or captures outside the sampled time"
            )
        if gap and self.open_jobs:
            found.append(
                f"{self.open_jobs} job(s) still open ({fmt_credits(self.open_held)} credits held): "
                "EvoLink may have billed them before the ledger captured"
            )
        if self.tasks_unreadable:
            found.append(f"{self.tasks_unreadable} task(s) EvoLink could not report any more")
        return found


class Reconciler:
    def __init__(
        self,
        book: JobBook,
        evolink: EvoLinkClient,
        *,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.book = book
        self.evolink = evolink
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        #: Set each time a sample is recorded (tests wait on it).
        self.sampled = asyncio.Event()

    # -- samples -----------------------------------------------------------------------------

    async def sample(self, reason: str) -> bool:
        """Record one reading of the account's credits; False when EvoLink could not say."""
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
            # cancellation of a stop that lands as the reading returns (the stop then hangs).
            async with asyncio.timeout(SAMPLE_TIMEOUT):
                account = await self.evolink.credits()
        except (ProviderError, TimeoutError) as exc:
            log.info("account sample (%s) skipped: %s", reason, getattr(exc, "code", None) or exc)
            return False
        async with self.book.store.transaction() as tx:
            await account_rows.record(
                tx,
                None if account.used is None else to_uc(account.used),
                None if account.remaining is None else to_uc(account.remaining),
                account.unlimited,
                reason,
            )
        self.sampled.set()
        return True

    async def run_sampler(
        self, every: float, on_ahead: Callable[[Reconciliation], Awaitable[None]]
    ) -> None:
        """Sample now ("start") and every `every` seconds, and call `on_ahead` when the
        account's spend runs ahead of the ledger's beyond the threshold (the caller sends the
        once-a-day alert)."""
        reason = "start"
        while True:
            try:
                if await self.sample(reason):
                    report = await self.reconcile(self.book.ledger.current_period(), tasks=False)
                    if ahead_beyond_threshold(report):
                        await on_ahead(report)
            except Exception:
                log.exception("sampling the EvoLink account failed")
            reason = "tick"
            await asyncio.sleep(every)

    # -- the comparison ----------------------------------------------------------------------

    async def reconcile(self, period: Period, *, tasks: bool = True) -> Reconciliation:
        start, end = self._window(period)
        async with self.book.store.reading() as tx:
            samples = await account_rows.between(tx, start, end)
        first, last = (samples[0], samples[-1]) if samples else (None, None)
        report = Reconciliation(
            period_start=period.start,
            since=None if first is None else first.at,
            until=None if last is None else last.at,
            samples=len(samples),
            account_used=None,
            ledger_captured=Decimal(0),
        )
        if first is not None and last is not None and first is not last:
            assert first.used_uc is not None and last.used_uc is not None
            report.account_used = from_uc(last.used_uc - first.used_uc)
            captures = await self.book.ledger.captures_between(first.at, last.at)
            report.ledger_captured = from_uc(sum(c.amount_uc for c in captures))
        open_jobs = [
            j
            for j in await self.book.unfinished_jobs()
            if j.status in (JobStatus.SUBMITTED, JobStatus.DELIVERING)
        ]
        report.open_jobs = len(open_jobs)
        report.open_held = from_uc(sum(j.charge_uc for j in open_jobs))
        if tasks:
            await self._check_tasks(report, start, end)
        return report

    async def _check_tasks(self, report: Reconciliation, start: str, end: str) -> None:
        jobs = await self.book.ended_with_task(start, end, MAX_TASKS + 1)
        if len(jobs) > MAX_TASKS:
            report.tasks_skipped = 1  # at least; the first MAX_TASKS are checked
            jobs = jobs[:MAX_TASKS]
        limit = asyncio.Semaphore(CONCURRENCY)

        async def check(job: Job) -> TaskCheck | bool | None:
            assert job.task_id is not None
            async with limit:
                try:
                    snap = await self.evolink.get_task(job.task_id)
                except ProviderError:
                    return False
            reported = snap.kept if snap.status in ("failed", "cancelled") else snap.credits_used
            if not snap.terminal or reported is None:
                return None  # EvoLink reports no charge: nothing to compare
            released = job.status == JobStatus.CANCELLED or job.charged_uc is None
            ledger = Decimal(0) if released else from_uc(job.charged_uc or 0)
            if to_uc(reported) == to_uc(ledger):
                return True
            return TaskCheck(job.id, job.task_id, job.status.value, ledger, reported)

        for outcome in await asyncio.gather(*(check(j) for j in jobs)):
            if outcome is False:
                report.tasks_unreadable += 1
                continue
            report.tasks_checked += 1
            if isinstance(outcome, TaskCheck):
                report.tasks.append(outcome)

    def _window(self, period: Period) -> tuple[str, str]:
        """The period as ISO UTC text bounds (its end: now, if the period is current)."""
        tz = self.book.ledger.timezone
        start = dt.datetime.combine(period.start, dt.time(0), tzinfo=tz).astimezone(dt.UTC)
        end = min(period.resets_at, self._now())
        return _iso(start), _iso(end)


def ahead_beyond_threshold(report: Reconciliation) -> bool:
    ahead = report.unexplained
    if ahead is None or ahead <= 0:
        return False
    return ahead > max(AHEAD_ALERT, report.ledger_captured * AHEAD_ALERT_SHARE)


def ahead_text(report: Reconciliation) -> str:
    ahead = report.unexplained or Decimal(0)
    return (
        f"The EvoLink account spent {fmt_credits(report.account_used or Decimal(0))} credits "
        f"since {report.since}, the bot's ledger captured {fmt_credits(report.ledger_captured)}: "
        f"{fmt_credits(ahead)} credits are not explained by this bot's jobs (another user of "
        "the same API key, or a charge the bot missed). Run `sora-bot admin reconcile`."
    )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + fmt_credits(value)
