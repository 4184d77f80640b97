"""The ledger on each engine (a real SQLite file, a real PostgreSQL database): atomic admission
under concurrency, exact arithmetic, holds that settle once, periods that roll over without a
reset job."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import multiprocessing
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.errors import BudgetError
from bot.domain.models import Requester, Surface, VideoRequest, to_uc
from bot.domain.periods import period_for
from bot.infra.store import Store, open_store
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger

REQ = VideoRequest(model="sora-2", prompt="p", duration=10, aspect_ratio="9:16")
UTC = ZoneInfo("UTC")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.close()


def book_for(
    store: Store, limit: str = "300", team: str = "0", now: dt.datetime | None = None
) -> JobBook:
    money = Ledger(
        store,
        default_limit=Decimal(limit),
        default_team_budget=Decimal(team),
        period_kind="month",
        timezone=UTC,
        now=(lambda: now) if now else None,
    )
    return JobBook(store, money)


async def test_200_concurrent_requests_against_a_limit_that_fits_20(store: Store) -> None:
    book = book_for(store, limit="50")  # 20 × 2.5 = 50
    who = Requester(platform="t", workspace="w", user="u")

    async def one() -> bool:
        try:
            await book.accept(who, REQ, Surface(), Decimal("2.5"))
            return True
        except BudgetError:
            return False

    results = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(results) == 20
    balance = await book.ledger.balance(who)
    assert balance.held == Decimal(50) and balance.available == 0
    rows = await store.fetchall("SELECT COUNT(*) FROM jobs")
    assert rows[0][0] == 20, "refused requests leave no job row"


async def test_two_processes_worth_of_connections_never_overspend(database_url: str) -> None:
    """Two Stores on one database (as `sora-bot admin` beside the bot, or two replicas on
    PostgreSQL, each with its own pool): the one-writer rule (BEGIN IMMEDIATE, the advisory
    lock) serialises their admissions, so the limit still holds."""
    first, second = await open_store(database_url), await open_store(database_url)
    try:
        books = [book_for(first, limit="25"), book_for(second, limit="25")]
        who = Requester(platform="t", workspace="w", user="u")

        async def one(book: JobBook) -> bool:
            try:
                await book.accept(who, REQ, Surface(), Decimal("2.5"))
                return True
            except BudgetError:
                return False

        results = await asyncio.gather(*(one(books[i % 2]) for i in range(60)))
        assert sum(results) == 10
    finally:
        await first.close()
        await second.close()


def _admit_in_a_process(url: str, attempts: int, start_at: float) -> int:
    """A process's admissions (spawned), all sent at wall-clock `start_at`, so that both
    processes' overlap: how many of `attempts` were accepted."""

    async def go() -> int:
        store = await open_store(url, pool_size=4)
        try:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            book = book_for(store, limit="25")
            who = Requester(platform="t", workspace="w", user="u")

            async def one() -> bool:
                try:
                    await book.accept(who, REQ, Surface(), Decimal("2.5"))
                    return True
                except BudgetError:
                    return False

            return sum(await asyncio.gather(*(one() for _ in range(attempts))))
        finally:
            await store.close()

    return asyncio.run(go())


async def test_two_processes_admitting_at_once_never_overspend(database_url: str) -> None:
    """Two OS processes, each with its own connection (SQLite) or pool (PostgreSQL), admit
    against one budget at the same time: exactly what fits is accepted."""
    store = await open_store(database_url)  # created and migrated before the children start
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    start_at = time.time() + 3  # both children are up and connected by then
    try:
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
            accepted = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, _admit_in_a_process, database_url, 40, start_at)
                    for _ in "ab"
                )
            )
        assert sum(accepted) == 10, accepted  # 10 × 2.5 = 25
        balance = await book_for(store, limit="25").ledger.balance(
            Requester(platform="t", workspace="w", user="u")
        )
        assert balance.held == Decimal(25) and balance.available == 0
    finally:
        await store.close()


async def test_team_budget_is_shared_by_all_users_of_a_workspace(store: Store) -> None:
    book = book_for(store, limit="100", team="10")
    users = [Requester(platform="t", workspace="w", user=f"u{i}") for i in range(8)]

    async def one(who: Requester) -> bool:
        try:
            await book.accept(who, REQ, Surface(), Decimal("2.5"))
            return True
        except BudgetError as exc:
            assert exc.scope == "team"
            return False

    results = await asyncio.gather(*(one(users[i % 8]) for i in range(40)))
    assert sum(results) == 4
    other = Requester(platform="t", workspace="other", user="u0")
    await book.accept(other, REQ, Surface(), Decimal("2.5"))  # another workspace is not capped


async def test_holds_settle_exactly_once_and_arithmetic_is_exact(store: Store) -> None:
    book = book_for(store, limit="1")
    who = Requester(platform="t", workspace="w", user="u")
    jobs = [await book.accept(who, REQ, Surface(), Decimal("0.1")) for _ in range(10)]
    # ten holds of 0.1 fill a limit of 1 exactly (floats would say 0.9999999999999999)
    assert (await book.ledger.balance(who)).available == 0
    with pytest.raises(BudgetError):
        await book.accept(who, REQ, Surface(), Decimal("0.001"))
    async with store.transaction() as tx:
        assert await book.ledger.settle_in(tx, jobs[0].id, charge_uc=None)
        assert not await book.ledger.settle_in(tx, jobs[0].id, charge_uc=to_uc("0.1"))
    balance = await book.ledger.balance(who)
    assert balance.available == Decimal("0.1") and balance.used == 0


async def test_a_new_period_starts_empty_without_any_reset(store: Store) -> None:
    who = Requester(platform="t", workspace="w", user="u")
    october = dt.datetime(2026, 10, 31, 23, 59, tzinfo=dt.UTC)
    november = dt.datetime(2026, 11, 1, 0, 0, 1, tzinfo=dt.UTC)
    old = book_for(store, limit="5", now=october)
    await old.accept(who, REQ, Surface(), Decimal("5"))
    with pytest.raises(BudgetError) as refused:
        await old.accept(who, REQ, Surface(), Decimal("1"))
    assert refused.value.resets_at == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    new = book_for(store, limit="5", now=november)
    balance = await new.ledger.balance(who)
    assert balance.used == 0 and balance.held == 0 and balance.available == 5
    assert balance.period_start == dt.date(2026, 11, 1)
    assert [r.reserved for r in await old.ledger.usage()] == [Decimal(5)]


def test_periods_follow_the_calendar_in_the_budget_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    moment = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)  # already Monday 30th in Paris
    week = period_for(moment, "week", paris)
    assert week.start == dt.date(2026, 11, 30)
    assert period_for(moment, "week", UTC).start == dt.date(2026, 11, 23)
    day = period_for(moment, "day", paris)
    assert day.resets_at == dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC)
    december = period_for(dt.datetime(2026, 12, 15, tzinfo=dt.UTC), "month", UTC)
    assert december.resets_at == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
