"""The life of a job, as the job book's one transition table states it, on each engine's store
(no server, no simulator): every move the table allows works once, every other is refused."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.domain.errors import JobStateError
from bot.domain.lifecycle import TRANSITIONS, sources_of
from bot.domain.models import JobStatus, Requester, Surface, VideoRequest, to_uc
from bot.infra.store import open_store
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger

REQ = VideoRequest(model="sora-2-preview", prompt="p", duration=4, aspect_ratio="16:9")
WHO = Requester(platform="t", workspace="w", user="u")
P, S, D = JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.DELIVERING


@pytest.fixture
async def book(database_url: str) -> AsyncIterator[JobBook]:
    store = await open_store(database_url)
    money = Ledger(
        store,
        default_limit=Decimal(100),
        default_team_budget=Decimal(0),
        period_kind="month",
        timezone=dt.UTC,  # type: ignore[arg-type]
    )
    yield JobBook(store, money)
    await store.close()


def test_the_table_is_the_documented_life() -> None:
    assert TRANSITIONS[P] == {S, JobStatus.FAILED, JobStatus.CANCELLED}
    assert TRANSITIONS[S] == {D, JobStatus.FAILED}  # EvoLink has it: it renders and bills
    assert TRANSITIONS[D] == {JobStatus.DELIVERED, JobStatus.FAILED}
    assert all(not TRANSITIONS[s] for s in JobStatus if s.terminal)
    assert set(TRANSITIONS) == set(JobStatus)
    assert sources_of(JobStatus.CANCELLED) == (P,)  # only before EvoLink has the task


async def _delivering(book: JobBook) -> str:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.mark_submitted(job.id, "task-1", 60)
    assert await book.mark_delivering(job.id, "https://files.example/v.mp4", Decimal("20"))
    return job.id


async def test_a_job_goes_through_its_life_once(book: JobBook) -> None:
    job_id = await _delivering(book)
    assert not await book.mark_submitted(job_id, "task-2", 60)  # delivering → submitted: no
    assert await book.finish_delivered(job_id)
    assert not await book.finish_delivered(job_id)  # recorded once
    assert not await book.finish_failed(job_id, "late", "too late")  # terminal stays terminal
    with pytest.raises(JobStateError):
        await book.finish_cancelled(job_id, "t:u")
    job = await book.job(job_id)
    assert job.status == JobStatus.DELIVERED and job.charged_uc == to_uc(20)
    balance = await book.ledger.balance(WHO)
    assert balance.used == Decimal(20) and balance.held == 0  # EvoLink's charge was captured


async def test_a_delivering_job_cannot_be_cancelled_but_can_fail(book: JobBook) -> None:
    job_id = await _delivering(book)
    with pytest.raises(JobStateError, match="can no longer be cancelled"):
        await book.finish_cancelled(job_id, "t:u")
    assert await book.finish_failed(job_id, "result_expired", "gone")
    assert (await book.ledger.balance(WHO)).held == 0


async def test_fields_other_than_the_status_cannot_change_it(book: JobBook) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    with pytest.raises(ValueError, match="status"):
        await book._update(job.id, None, status=JobStatus.DELIVERED)
    from bot.infra.store import job_rows

    async with book.store.transaction() as tx:
        with pytest.raises(ValueError, match="not a writable job column"):
            await job_rows.update(tx, job.id, None, {"reserved_uc": 0})
    assert (await book.job(job.id)).status == P


async def test_a_telling_is_counted_only_for_an_untold_ending(book: JobBook) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.begin_telling(job.id) is None  # not ended: nothing to tell
    assert await book.finish_failed(job.id, "content_policy_violation", "refused")
    first = await book.begin_telling(job.id)
    second = await book.begin_telling(job.id)  # a retelling after a crash, say
    assert first is not None and second is not None
    assert (first.tell_attempts, second.tell_attempts) == (1, 2)
    await book.mark_told(job.id)
    assert await book.begin_telling(job.id) is None


async def test_a_pending_job_is_cancelled_and_its_hold_released(book: JobBook) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert job.cancellable
    cancelled = await book.finish_cancelled(job.id, "t:u")
    assert cancelled.status == JobStatus.CANCELLED and not cancelled.cancellable
    balance = await book.ledger.balance(WHO)
    assert balance.held == 0 and balance.used == 0
    assert not await book.begin_submit(job.id)  # the tracker never sends a cancelled job


async def test_a_job_evolink_has_cannot_be_cancelled(book: JobBook) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.mark_submitted(job.id, "task-1", 60)
    submitted = await book.job(job.id)
    assert not submitted.cancellable
    with pytest.raises(JobStateError, match="EvoLink is already rendering"):
        await book.finish_cancelled(job.id, "t:u")
    balance = await book.ledger.balance(WHO)
    assert balance.held == Decimal("23.04") and balance.used == 0  # nothing released


async def test_a_cancel_during_the_submit_loses_to_it(book: JobBook) -> None:
    """The tracker claimed the job (its POST is on the wire): the cancel is refused, the hold
    stays, and the submit's answer is recorded."""
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.begin_submit(job.id)
    assert not (await book.job(job.id)).cancellable
    with pytest.raises(JobStateError, match="can no longer be cancelled"):
        await book.finish_cancelled(job.id, "t:u")
    assert await book.mark_submitted(job.id, "task-1", 60)
    assert (await book.ledger.balance(WHO)).held == Decimal("23.04")
    # A submit EvoLink refused outright (429) makes it cancellable again.
    other = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.begin_submit(other.id)
    await book.submit_not_taken(other.id)
    assert (await book.finish_cancelled(other.id, "t:u")).status == JobStatus.CANCELLED


async def test_a_failed_task_is_charged_what_evolink_kept(book: JobBook) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.mark_submitted(job.id, "task-1", 60)
    assert await book.finish_failed(job.id, "service_error", "broke", Decimal("5"))
    assert not await book.finish_failed(job.id, "service_error", "again", Decimal("5"))
    failed = await book.job(job.id)
    assert failed.status == JobStatus.FAILED and failed.charged_uc == to_uc(5)
    balance = await book.ledger.balance(WHO)
    assert balance.used == Decimal(5) and balance.held == 0  # captured 5, the rest released
    plain = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.finish_failed(plain.id, "service_error", "broke", Decimal(0))
    assert (await book.job(plain.id)).charged_uc is None
    assert (await book.ledger.balance(WHO)).used == Decimal(5)  # a 0 kept is a release


async def test_a_charge_beyond_the_tolerance_is_logged_and_counted(
    book: JobBook, caplog: pytest.LogCaptureFixture
) -> None:
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.mark_submitted(job.id, "task-1", 60)
    assert await book.mark_delivering(job.id, "https://files.example/v.mp4", Decimal("23.1"))
    with caplog.at_level("WARNING", logger="bot.services.jobs"):
        assert await book.finish_delivered(job.id)
    assert not caplog.records  # 0.06 off 23.04 is within 0.5 %
    near = await book.ledger.charge_mismatches()
    assert (near.over, near.under) == (0, 0)
    job = await book.accept(WHO, REQ, Surface(), Decimal("23.04"))
    assert await book.mark_submitted(job.id, "task-2", 60)
    assert await book.mark_delivering(job.id, "https://files.example/v.mp4", Decimal("30"))
    with caplog.at_level("WARNING", logger="bot.services.jobs"):
        assert await book.finish_delivered(job.id)
    assert any(job.id in r.getMessage() and "30" in r.getMessage() for r in caplog.records)
    far = await book.ledger.charge_mismatches()
    assert (far.over, far.over_credits, far.under) == (1, Decimal("6.96"), 0)
