"""The ledger's running totals (issue 12, item 2): every entry moves the user's and the team's
total in its own transaction, so they always equal `_SUMS` over the entries; admission reads
them; `Ledger.verify` finds a total that does not. On both engines (`database_url`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.errors import BudgetError
from bot.domain.models import Requester, Surface, VideoRequest, to_uc
from bot.infra.store import Store, open_store
from bot.infra.store import ledger_rows as sql
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger
from bot.services.totals import TotalsDifference

# The ledger's arithmetic does not depend on the model: the quotes below are plain amounts.
REQ = VideoRequest(model="any-model", prompt="p", duration=10, aspect_ratio="9:16")
UTC = ZoneInfo("UTC")
ALICE = Requester(platform="t", workspace="w", user="alice")
BOB = Requester(platform="t", workspace="w", user="bob")
CAROL = Requester(platform="t", workspace="other", user="carol")
OCTOBER = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)
NOVEMBER = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.close()


def book_for(store: Store, now: dt.datetime, limit: str = "100", team: str = "60") -> JobBook:
    money = Ledger(
        store,
        default_limit=Decimal(limit),
        default_team_budget=Decimal(team),
        period_kind="month",
        timezone=UTC,
        now=lambda: now,
    )
    return JobBook(store, money)


async def delivered(book: JobBook, who: Requester, quote: str, charge: str | None) -> None:
    job = await book.accept(who, REQ, Surface(), Decimal(quote))
    assert await book.begin_submit(job.id)
    assert await book.mark_submitted(job.id, f"task-{job.id}", 10)
    assert await book.mark_delivering(
        job.id, "http://x/v.mp4", None if charge is None else Decimal(charge)
    )
    assert await book.finish_delivered(job.id)


async def failed(book: JobBook, who: Requester, quote: str, kept: str | None) -> None:
    job = await book.accept(who, REQ, Surface(), Decimal(quote))
    assert await book.begin_submit(job.id)
    assert await book.mark_submitted(job.id, f"task-{job.id}", 10)
    assert await book.finish_failed(job.id, "content_policy", "refused", Decimal(kept or 0))


async def busy_history(store: Store) -> JobBook:
    """Holds, captures (billed, and the quote), releases (failed, cancelled), a capture of what
    a failed task kept, grants, an open hold, three scopes and two periods."""
    old = book_for(store, OCTOBER)
    await delivered(old, ALICE, "7.5", None)
    book = book_for(store, NOVEMBER)
    await delivered(book, ALICE, "10", "9.8765")
    await delivered(book, BOB, "4.25", None)
    await failed(book, ALICE, "3", None)
    await failed(book, BOB, "5", "1.0001")
    cancelled = await book.accept(BOB, REQ, Surface(), Decimal("2.5"))
    await book.finish_cancelled(cancelled.id, "bob")
    await book.accept(ALICE, REQ, Surface(), Decimal("6.0001"))  # still open: held
    await book.ledger.grant("admin", BOB, Decimal("0.0003"), "thanks")
    await delivered(book, CAROL, "1", None)
    return book


async def test_totals_equal_their_recomputation_after_every_kind_of_entry(store: Store) -> None:
    book = await busy_history(store)
    async with store.reading() as tx:
        stored = await sql.all_stored_totals(tx)
        recomputed = await sql.recomputed_totals(tx)
    assert stored == recomputed
    assert len(stored) == 7  # Oct: alice, team w; Nov: alice, bob, team w, carol, team other
    report = await book.ledger.verify()
    assert report.agrees and report.checked == 7
    november = "2026-11-01"
    team = stored[(november, "t", "w", sql.TEAM)]
    # used: 9.8765 billed + 4.25 quoted + 1.0001 kept; held: the open 6.0001; 5 jobs held
    assert team == sql.Sums(to_uc("0.0003"), to_uc("15.1266"), to_uc("6.0001"), 6)
    balance = await book.ledger.balance(ALICE)
    assert (balance.used, balance.held) == (Decimal("9.8765"), Decimal("6.0001"))
    assert (balance.team_used, balance.team_held) == (Decimal("15.1266"), Decimal("6.0001"))


async def test_a_refusal_leaves_the_totals_as_they_were(store: Store) -> None:
    book = book_for(store, NOVEMBER, limit="10", team="12")
    await book.accept(ALICE, REQ, Surface(), Decimal("8"))
    async with store.reading() as tx:
        before = await sql.all_stored_totals(tx)
    with pytest.raises(BudgetError) as mine:
        await book.accept(ALICE, REQ, Surface(), Decimal("2.0001"))
    assert mine.value.scope == "user" and mine.value.available == Decimal(2)
    with pytest.raises(BudgetError) as team:
        await book.accept(BOB, REQ, Surface(), Decimal("4.5"))
    assert team.value.scope == "team" and team.value.available == Decimal(4)
    async with store.reading() as tx:
        assert await sql.all_stored_totals(tx) == before
    assert (await book.ledger.verify()).agrees


async def test_concurrent_admissions_against_the_team_total_never_overspend(store: Store) -> None:
    book = book_for(store, NOVEMBER, limit="100", team="25")
    users = [Requester(platform="t", workspace="w", user=f"u{i}") for i in range(5)]

    async def one(who: Requester) -> bool:
        try:
            await book.accept(who, REQ, Surface(), Decimal("2.5"))
            return True
        except BudgetError:
            return False

    results = await asyncio.gather(*(one(users[i % 5]) for i in range(60)))
    assert sum(results) == 10
    assert (await book.ledger.balance(users[0])).team_held == Decimal(25)
    assert (await book.ledger.verify()).agrees


async def test_a_corrupted_total_is_reported_with_its_exact_figures(store: Store) -> None:
    book = await busy_history(store)
    async with store.transaction() as tx:
        await tx.execute(
            "UPDATE ledger_totals SET used_uc = used_uc + 123, jobs = 9"
            " WHERE period_start = '2026-11-01' AND user_id = 'bob'"
        )
        await tx.execute(
            "DELETE FROM ledger_totals WHERE period_start = '2026-10-01' AND user_id = ''"
        )
    report = await book.ledger.verify()
    assert not report.agrees and report.checked == 7
    assert report.differences == (
        TotalsDifference("2026-10-01", "t", "w", "", "used", 0, to_uc("7.5")),
        TotalsDifference("2026-10-01", "t", "w", "", "jobs", 0, 1),
        TotalsDifference("2026-11-01", "t", "w", "bob", "used", 52_624, to_uc("5.2501")),
        TotalsDifference("2026-11-01", "t", "w", "bob", "jobs", 9, 3),
    )
    assert report.differences[0].target == "t:w" and report.differences[0].scope == "team"
    assert report.differences[2].target == "t:w:bob" and report.differences[2].scope == "user"


async def test_a_clean_empty_database_agrees(store: Store) -> None:
    report = await book_for(store, NOVEMBER).ledger.verify()
    assert report.agrees and report.checked == 0 and report.differences == ()
