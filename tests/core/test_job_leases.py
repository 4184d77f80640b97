"""Job leases at the job book (both engines): claims take free or expired open jobs once, a
holder that lost its lease cannot write (fencing), release frees at once; the lease
keeper of a running bot stops acting by itself when it cannot renew; and three replicas'
keepers on one PostgreSQL share the open jobs fairly (a dead one's jobs spread, a replica
that holds too many gives some back, none is left unclaimed)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import JobStatus, Requester, Surface, VideoRequest
from bot.infra.simulator import Simulator
from bot.infra.store import Store, Tx, open_store
from bot.infra.store import job_rows as job_sql
from bot.infra.store.engine import Cursor
from bot.infra.store.job_rows import WaitingRow
from bot.services.job_leases import LeaseKeeper, fair_share
from bot.services.jobs import JobBook, LeaseLost
from bot.services.leases import Leases
from bot.services.ledger import Ledger
from tests.conftest import ALICE
from tests.pg import PgServer
from tests.prices import DEFAULT_MODEL, SHORTEST, price_of
from tests.support import RecordingPort, running_core, until

REQ = VideoRequest(model=DEFAULT_MODEL, prompt="p", duration=SHORTEST, aspect_ratio="16:9")
WHO = Requester(platform="t", workspace="w", user="u")
PRICE = price_of(f"p --duration {SHORTEST}")


def at(seconds: float) -> str:
    """An ISO UTC lease end `seconds` from now (negative: already expired)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat(
        timespec="milliseconds"
    )


def book_on(store: Store, replica: str | None) -> JobBook:
    money = Ledger(
        store,
        default_limit=PRICE * 100,
        default_team_budget=Decimal(0),
        period_kind="month",
        timezone=dt.UTC,  # type: ignore[arg-type]
    )
    return JobBook(store, money, replica=replica)


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database: two replicas' connections."""
    first, second = await open_store(database_url), await open_store(database_url)
    yield first, second
    await first.close()
    await second.close()


async def released_job(book: JobBook) -> str:
    """A job accepted and released from the queue, leased to nobody."""
    job = await book.accept(WHO, REQ, Surface(), PRICE)
    assert await book.release_from_queue(job.id)
    return job.id


async def test_claims_take_free_or_expired_open_jobs_once_oldest_first(
    stores: tuple[Store, Store],
) -> None:
    a, b = book_on(stores[0], "a"), book_on(stores[1], "b")
    first, second, third = [await released_job(a) for _ in range(3)]
    queued = (await a.accept(WHO, REQ, Surface(), PRICE)).id  # waits for a slot: nobody's
    assert await a.claim_jobs(at(30), 2) == [first, second]
    assert await b.claim_jobs(at(30), 10) == [third]
    assert await a.claim_jobs(at(30), 10) == []  # everything open is held
    assert await a.renew_leases(at(30)) == {first, second}
    assert await b.renew_leases(at(30)) == {third}
    assert queued not in await a.renew_leases(at(30)) | await b.renew_leases(at(30))
    # A lease that ran out is anyone's: b takes a's (a stopped renewing).
    assert await a.renew_leases(at(-1)) == {first, second}
    assert sorted(await b.claim_jobs(at(30), 10)) == sorted([first, second])
    assert await a.renew_leases(at(30)) == set()  # renewing never takes back what was lost
    # A clean stop gives every lease back at once.
    assert await b.release_leases() == 3
    assert sorted(await a.claim_jobs(at(30), 10)) == sorted([first, second, third])


async def test_two_replicas_claiming_together_split_the_jobs(
    stores: tuple[Store, Store],
) -> None:
    a, b = book_on(stores[0], "a"), book_on(stores[1], "b")
    ids = {await released_job(a) for _ in range(12)}
    got = await asyncio.gather(*(book.claim_jobs(at(30), 3) for book in (a, b, a, b, a, b)))
    mine_a = set(got[0]) | set(got[2]) | set(got[4])
    mine_b = set(got[1]) | set(got[3]) | set(got[5])
    assert not mine_a & mine_b, "a job leased to two replicas"
    assert mine_a | mine_b == ids
    assert await a.renew_leases(at(30)) == mine_a and await b.renew_leases(at(30)) == mine_b


def _start_all(rows: Sequence[WaitingRow], *_ignored: object) -> tuple[list[str], dict[str, int]]:
    """A queue policy that starts every waiting job (the caps are another test's)."""
    return [row.job_id for row in rows], {}


async def test_a_dispatch_leases_only_its_share_and_leaves_the_rest_for_a_claim(
    stores: tuple[Store, Store],
) -> None:
    """One replica's dispatch may release a whole intake; it leases only its fair share of the
    open jobs after the release, and another replica's claim takes the rest."""
    a, b = book_on(stores[0], "a"), book_on(stores[1], "b")
    queued = [(await a.accept(WHO, REQ, Surface(), PRICE)).id for _ in range(20)]
    started, _moved = await a.release_fitting(
        _start_all, at(30), lambda open_jobs: fair_share(open_jobs, 2)
    )
    assert len(started) == fair_share(20, 2) == 12
    assert await a.renew_leases(at(30)) == set(started)
    rest = set(queued) - set(started)
    claimed, _left = await b.claim_some(at(30), 100)
    assert set(claimed) == rest  # released, leased to nobody: b has room for them
    assert [(await a.job(job)).status for job in queued] == [JobStatus.PENDING] * len(queued)
    # Without a share (one replica, or before the first tick) everything released is leased.
    more = [(await a.accept(WHO, REQ, Surface(), PRICE)).id for _ in range(3)]
    again, _ = await a.release_fitting(_start_all, at(30), lambda _open: None)
    assert sorted(again) == sorted(more)


async def test_progress_writes_do_not_wait_for_the_one_writer_lock(pg_url: str) -> None:
    """On PostgreSQL a progress write is one self-fenced UPDATE outside the one-writer rule: it
    lands while another replica holds the write lock (a slow settlement, a claim), and it is
    still refused to a replica that lost the lease. (SQLite has one writer per file.)"""
    stores = await open_store(pg_url), await open_store(pg_url)
    mine, other = book_on(stores[0], "mine"), book_on(stores[1], "other")
    job_id = await released_job(mine)
    assert await mine.claim_jobs(at(30), 1) == [job_id]
    assert await mine.begin_submit(job_id) and await mine.mark_submitted(job_id, "task-1", 60)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with stores[1].transaction():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    try:
        await holding.wait()
        await asyncio.wait_for(mine.record_progress(job_id, 40), timeout=10)
        assert (await other.job(job_id)).progress == 40
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(other.record_progress(job_id, 90), timeout=10)
        assert (await mine.job(job_id)).progress == 40
        # The renewal and the finish of the task do not wait for it either.
        assert await asyncio.wait_for(mine.renew_leases(at(30)), timeout=10) == {job_id}
        with pytest.raises(LeaseLost):
            await asyncio.wait_for(other.mark_delivering(job_id, "https://x/v.mp4", None), 10)
        assert await asyncio.wait_for(mine.mark_delivering(job_id, "https://x/v.mp4", None), 10)
        assert (await other.job(job_id)).status == JobStatus.DELIVERING
    finally:
        release.set()
        await holder
        for store in stores:
            await store.close()


class _RenewAfterTheRead:
    """A claim's transaction in which the holder renews right after the claim's read."""

    def __init__(self, tx: Tx, renew: Callable[[], Awaitable[object]]) -> None:
        self._tx, self._renew, self.renewed = tx, renew, False

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor = await self._tx.execute(sql, params)
        if sql.startswith("SELECT") and not self.renewed:
            self.renewed = True
            await asyncio.wait_for(self._renew(), timeout=10)  # outside the claim's lock
        return cursor


async def test_a_lease_renewed_between_a_claims_read_and_its_write_stays_its_holders(
    pg_url: str,
) -> None:
    """Renewals run outside the one-writer lock (PostgreSQL), so a claim may read a lease as
    expired that its holder renews before the claim writes: the claim's UPDATE checks again
    and takes nothing."""
    stores = await open_store(pg_url), await open_store(pg_url)
    try:
        holder, claimer = book_on(stores[0], "holder"), book_on(stores[1], "claimer")
        job_id = await released_job(holder)
        assert await holder.claim_jobs(at(-1), 1) == [job_id]  # held, but already expired
        async with stores[1].transaction() as tx:
            racing = _RenewAfterTheRead(tx, lambda: holder.renew_leases(at(30)))
            taken = await job_sql.claim(racing, "claimer", at(30), at(0), 10)
        assert racing.renewed
        assert taken == []
        assert await holder.renew_leases(at(30)) == {job_id}
        assert await claimer.renew_leases(at(30)) == set()
    finally:
        for store in stores:
            await store.close()


async def test_a_holder_that_lost_its_lease_cannot_write(stores: tuple[Store, Store]) -> None:
    """Fencing: the slow holder's writes that matter raise LeaseLost and change nothing."""
    slow, other = book_on(stores[0], "slow"), book_on(stores[1], "other")
    job_id = await released_job(slow)
    assert await slow.claim_jobs(at(-1), 1) == [job_id]  # taken, then it ran out unrenewed
    assert await other.claim_jobs(at(30), 1) == [job_id]  # the other replica took it over
    with pytest.raises(LeaseLost):
        await slow.begin_submit(job_id)
    assert (await slow.job(job_id)).submit_started_at is None
    assert await other.begin_submit(job_id)
    assert await other.mark_submitted(job_id, "task-1", 60)

    writes: list[Callable[[], object]] = [
        lambda: slow.record_progress(job_id, 50),
        lambda: slow.mark_delivering(job_id, "https://files.example/v.mp4", PRICE),
        lambda: slow.finish_failed(job_id, "service_error", "stale"),
    ]
    for write in writes:
        with pytest.raises(LeaseLost):
            await write()  # type: ignore[misc]
    job = await other.job(job_id)
    assert job.status == JobStatus.SUBMITTED and job.progress == 0 and job.error is None

    assert await other.mark_delivering(job_id, "https://files.example/v.mp4", PRICE)
    with pytest.raises(LeaseLost):
        await slow.note_delivery_attempt(job_id)
    with pytest.raises(LeaseLost):
        await slow.finish_delivered(job_id)
    assert (await other.job(job_id)).delivery_attempts == 0
    await other.note_delivery_attempt(job_id)
    assert await other.finish_delivered(job_id)
    done = await other.job(job_id)
    assert done.status == JobStatus.DELIVERED and done.delivery_attempts == 1
    assert await other.renew_leases(at(30)) == set()  # an ended job is nobody's


async def test_without_a_replica_nothing_is_fenced(stores: tuple[Store, Store]) -> None:
    """The CLI's job book (no replica id) writes as before."""
    cli, holder = book_on(stores[0], None), book_on(stores[1], "h")
    job_id = await released_job(cli)
    assert await holder.claim_jobs(at(30), 1) == [job_id]
    assert (await cli.finish_cancelled(job_id, "cli:root")).status == JobStatus.CANCELLED


async def test_a_replica_that_cannot_renew_stops_following_by_itself(
    tmp_path: Path, sim: Simulator
) -> None:
    """Cut from the database (renewals fail), the tracker drops every job before its
    leases run out, and takes them back once it can renew again."""
    sim.config.task_seconds = 60.0
    port = RecordingPort("test")
    async with running_core(tmp_path, sim, ports=[port], lease_seconds=1.5) as rc:
        tracker, book = rc.core.tracker, rc.core.book
        job = await rc.core.service.submit(ALICE, rc.core.service.parse("p"), Surface())
        await port.wait_for(job.id, "progress")
        assert tracker.in_flight == 1 and tracker.leases.held == {job.id}

        renew = book.renew_leases

        async def cut(until: str) -> set[str]:
            raise ConnectionError("the database is unreachable (test)")

        book.renew_leases = cut  # type: ignore[method-assign]
        cut_at = asyncio.get_running_loop().time()
        await until(lambda: not tracker.in_flight, 5)
        stopped_after = asyncio.get_running_loop().time() - cut_at
        assert stopped_after <= 1.5, "it acted past its leases' end"
        assert tracker.leases.held == set()

        book.renew_leases = renew  # type: ignore[method-assign]
        await until(lambda: bool(tracker.in_flight), 5)
        assert tracker.leases.held == {job.id}


async def test_wakeups_reach_every_store_and_listen_again_after_a_restart(
    pg_server: PgServer, pg_url: str
) -> None:
    """LISTEN/NOTIFY between two stores (two replicas) on one database, and again once the
    server restarted (the listening connection is reopened by itself)."""
    listener, sender = await open_store(pg_url), await open_store(pg_url)
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.listen("sora_wake", heard.put_nowait)
        await sender.notify("sora_wake", "job-1")
        async with asyncio.timeout(5):
            assert await heard.get() == "job-1"
        await asyncio.to_thread(pg_server.restart)
        async with asyncio.timeout(20):
            while True:  # the first words may go out before the listener is back
                with contextlib.suppress(Exception):  # its pool reconnects on the next use
                    await sender.notify("sora_wake", "job-2")
                try:
                    async with asyncio.timeout(0.5):
                        if await heard.get() == "job-2":
                            break
                except TimeoutError:
                    continue
    finally:
        await listener.close()
        await sender.close()


class Replica:
    """One replica's job book and lease keeper; `following` is what its tracker would follow."""

    def __init__(self, store: Store, name: str) -> None:
        self.name = name
        self.book = book_on(store, name)
        self.following: set[str] = set()
        self.keeper = LeaseKeeper(
            self.book,
            30.0,
            follow=self.following.add,
            drop=self.following.discard,
            followed=lambda: dict.fromkeys(self.following, 0.0),  # followed long ago
        )

    async def tick(self) -> None:
        await self.keeper.tick()

    async def held(self) -> set[str]:
        return await self.book.renew_leases(at(30))


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[list[Replica]]:
    """Three replicas' keepers, each on its own connection pool to one PostgreSQL."""
    stores = [await open_store(pg_url) for _ in range(3)]
    yield [Replica(store, name) for store, name in zip(stores, "abc", strict=True)]
    for store in stores:
        await store.close()


async def polled_job(book: JobBook, n: int) -> str:
    """A job submitted to EvoLink (waiting on its task), leased to nobody."""
    job_id = await released_job(book)
    assert await book.begin_submit(job_id)
    assert await book.mark_submitted(job_id, f"task-{n}", 60)
    return job_id


async def shares(replicas: list[Replica], ids: set[str]) -> dict[str, int]:
    """Jobs held per replica, after checking every job is held by exactly one of them and
    each follows exactly what it holds."""
    held = {r.name: await r.held() for r in replicas}
    together = [job for jobs in held.values() for job in jobs]
    assert len(together) == len(set(together)), "a job leased to two replicas"
    assert set(together) == ids, "a job left unclaimed"
    for r in replicas:
        assert r.following == held[r.name]
    return {name: len(jobs) for name, jobs in held.items()}


async def test_three_replicas_share_the_open_jobs_and_a_dead_ones_spread(
    replicas: list[Replica],
) -> None:
    a, b, c = replicas
    ids = {await polled_job(a.book, n) for n in range(60)}
    await a.tick()  # alone so far: it takes every job
    assert await shares(replicas, ids) == {"a": 60, "b": 0, "c": 0}
    for r in (b, c, a, b, c, a, b, c):  # b, c count; a gives back its surplus, they claim it
        await r.tick()
    share = fair_share(60, 3)
    split = await shares(replicas, ids)
    assert all(n <= share for n in split.values()), split
    assert min(split.values()) >= 60 // 3 - (share - 60 // 3) * 2, split

    # c dies: its leases run out unrenewed, and its heartbeat with them (gone or expired is
    # all one to the count: only live heartbeats are counted).
    lost = await c.book.renew_leases(at(-1))
    assert await Leases(c.book.store).release("replica:c", "c")
    before = {r.name: await r.held() for r in (a, b)}
    await a.tick()
    await b.tick()
    after = {r.name: await r.held() for r in (a, b)}
    gained = {name: after[name] - before[name] for name in after}
    assert gained["a"] and gained["b"], "the dead replica's jobs went to one survivor"
    assert gained["a"] | gained["b"] == lost
    c.following.clear()  # its process is gone
    split = await shares([a, b], ids)
    assert all(n <= fair_share(60, 2) for n in split.values()), split


async def test_jobs_beyond_the_share_are_claimed_at_the_next_tick_if_nobody_else_does(
    replicas: list[Replica],
) -> None:
    a, idle, _ = replicas
    await idle.tick()  # live, but it will not tick again (stuck): its share goes unclaimed
    await a.tick()
    ids = {await polled_job(a.book, n) for n in range(10)}
    await a.tick()
    assert len(await a.held()) == fair_share(10, 2) < 10
    await a.tick()
    assert await a.held() == ids == a.following
