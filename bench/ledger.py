"""Ledger: admissions per second, 1,000 concurrent requests from 50 users, no overspend.

    python bench/ledger.py [--requests 1000] [--users 50] [--repeat 3] [--processes 2]
                           [--history 0,20000,100000] [--database-url sqlite|postgresql|URL]

Real code path: `bot.services.jobs.JobBook.accept` (one write transaction: budget check of user
and team from their running totals, job row, hold entry and the totals' update) on a real
database: a SQLite file (WAL, synchronous=NORMAL) in a temp directory, or PostgreSQL —
`--database-url postgresql` starts a throwaway server with the tests' helper (tests/pg.py),
`--database-url postgresql://user@host:port/db` uses a server that lets this user create and
drop databases (each scenario gets its own, `sora_bench_…`, dropped after it).
All requests are started at once with asyncio.gather. Two budgets:
  roomy   limits far above demand: every request is admitted (pure admission throughput);
  tight   each user may afford 10 jobs and each workspace (2 × 25 users) 200: most requests
          are refused, and exactly 2 × 200 must be admitted.
Afterwards the ledger is audited in SQL: per user and per workspace Σ holds ≤ its budget,
one hold per admitted job and Σ holds = Σ jobs.reserved_uc; any excess is overspend; and
`Ledger.verify` recomputes every running total from the entries (`totals`: figures that
differ, must be 0).
`historyN` rows: user and team budgets both checked (neither binds) after N earlier ledger
entries in the period, written in bulk and their running totals rebuilt by the ledger's own
row function (`ledger_rows.rebuild_totals`, the same sums migration 9 fills) — admission reads
the totals, so its cost should not grow with N.
With `--processes N` (default 2) the same requests are also split over N processes on the
same database, started together: the admission must stay atomic across connections too.
Target: ≥ 500 admissions/s (decisions: admitted or refused), flat within 20 % from 0 to
100,000 prior entries, zero overspend.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.children import read_stdin_line, spawn, stop, wait_for_stdin_eof
from bot.domain.errors import BudgetError
from bot.domain.models import Requester, Surface, VideoRequest, to_uc
from bot.infra.store import Store, ledger_rows, now_iso, open_store
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger

QUOTE = Decimal("23.04")
WORKSPACES = 2
REQUEST = VideoRequest(
    model="sora-2-preview", prompt="ledger bench", duration=8, aspect_ratio="720x1280"
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


async def one(book: JobBook, who: Requester) -> tuple[bool, float]:
    start = time.perf_counter()
    try:
        await book.accept(who, REQUEST, Surface(), QUOTE)
        admitted = True
    except BudgetError:
        admitted = False
    return admitted, time.perf_counter() - start


async def audit(store: Store, user_limit_uc: int, team_uc: int) -> tuple[int, int, int]:
    """(users over budget, workspaces over budget, ledger/job mismatches)."""
    users = await store.fetchall(
        "SELECT workspace, user_id, SUM(amount_uc) AS held FROM ledger WHERE kind = 'hold'"
        " GROUP BY workspace, user_id"
    )
    teams = await store.fetchall(
        "SELECT workspace, SUM(amount_uc) AS held FROM ledger WHERE kind = 'hold'"
        " GROUP BY workspace"
    )
    over_users = sum(1 for r in users if int(r["held"]) > user_limit_uc)
    over_teams = sum(1 for r in teams if team_uc and int(r["held"]) > team_uc)
    jobs = await store.fetchone("SELECT COUNT(*) AS n, SUM(reserved_uc) AS mc FROM jobs")
    holds = await store.fetchone(
        "SELECT COUNT(*) AS n, SUM(amount_uc) AS mc FROM ledger WHERE kind = 'hold'"
    )
    orphans = await store.fetchone(
        "SELECT COUNT(*) AS n FROM jobs j WHERE (SELECT COUNT(*) FROM ledger l"
        " WHERE l.job_id = j.id AND l.kind = 'hold') != 1"
    )
    assert jobs is not None and holds is not None and orphans is not None
    mismatches = int(orphans["n"]) + (jobs["n"] != holds["n"]) + (jobs["mc"] != holds["mc"])
    return over_users, over_teams, mismatches


def budgets(name: str, requests: int) -> tuple[Decimal, Decimal]:
    """(user limit, team budget; 0 = none) of a scenario."""
    if name == "tight":
        return QUOTE * 10, QUOTE * 200
    if name.startswith("history"):  # both checks run, neither binds
        return QUOTE * 10**6, QUOTE * 10**8
    return QUOTE * requests, Decimal(0)


async def add_history(store: Store, book: JobBook, entries: int) -> None:
    """`entries` earlier captures this period, spread over the same users (a busy month),
    written in bulk; then the running totals rebuilt from the entries, as migration 9 does."""
    period = book.ledger.current_period().key
    rows = [
        (now_iso(), period, "slack", f"T{n % WORKSPACES}", f"U{n % 50}", "capture", 1000)
        for n in range(entries)
    ]
    async with store.transaction() as tx:
        for at in range(0, len(rows), 1000):
            chunk = rows[at : at + 1000]
            await tx.execute(
                "INSERT INTO ledger (at, period_start, platform, workspace, user_id, kind,"
                " amount_uc) VALUES " + ", ".join("(?, ?, ?, ?, ?, ?, ?)" for _ in chunk),
                [value for row in chunk for value in row],
            )
        await ledger_rows.rebuild_totals(tx)


def people_of(users: int) -> list[Requester]:
    return [
        Requester(platform="slack", workspace=f"T{n % WORKSPACES}", user=f"U{n}")
        for n in range(users)
    ]


def book_on(store: Store, name: str, requests: int) -> JobBook:
    user_limit, team_budget = budgets(name, requests)
    money = Ledger(
        store,
        default_limit=user_limit,
        default_team_budget=team_budget,
        period_kind="month",
        timezone=ZoneInfo("UTC"),
    )
    return JobBook(store, money)


def line(
    name: str,
    requests: int,
    admitted: int,
    elapsed: float,
    ms: list[float],
    overspend: int,
    mismatches: int,
    totals: int,
) -> str:
    expected = WORKSPACES * 200 if name.startswith("tight") else requests
    p50 = f"{statistics.median(ms):.1f}" if ms else "-"
    p99 = f"{percentile(ms, 99):.1f}" if ms else "-"
    return (
        f"{name:<22} {requests:>5} {admitted:>8} {expected:>8} {requests / elapsed:>11.0f} "
        f"{p50:>8} {p99:>8} {overspend:>9} {mismatches:>9} {totals:>6}"
    )


class Databases:
    """A fresh database per scenario: a SQLite file in a temp folder, a database on a
    throwaway PostgreSQL server (tests/pg.py, as the tests use), or one on a given server."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._tmp = tempfile.TemporaryDirectory()
        self._count = 0
        self._server: Any = None

    @property
    def engine(self) -> str:
        return "sqlite" if self.where == "sqlite" else "postgresql"

    async def new(self) -> str:
        self._count += 1
        if self.where == "sqlite":
            return f"sqlite:///{Path(self._tmp.name) / f'ledger{self._count}.db'}"
        if self.where == "postgresql":
            if self._server is None:
                from tests.pg import PgServer

                self._server = await asyncio.to_thread(PgServer.start)
            url: str = await asyncio.to_thread(self._server.fresh_database)
            return url
        name = f"sora_bench_{os.getpid()}_{self._count}"
        await self._admin(f"CREATE DATABASE {name}")
        return urlunsplit(urlsplit(self.where)._replace(path=f"/{name}"))

    async def drop(self, url: str) -> None:
        if self.where == "postgresql":
            await asyncio.to_thread(self._server.drop, url)
        elif self.where != "sqlite":
            await self._admin(f"DROP DATABASE IF EXISTS {urlsplit(url).path[1:]} WITH (FORCE)")

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.where)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)
        self._tmp.cleanup()


async def prepared(databases: Databases, name: str, requests: int) -> str:
    """A new database for the scenario, migrated, with its history (if any) written."""
    url = await databases.new()
    store = await open_store(url)
    try:
        if name.startswith("history"):
            await add_history(store, book_on(store, name, requests), int(name[7:]))
    finally:
        await store.close()
    return url


async def checked(url: str, name: str, requests: int) -> tuple[int, int, int]:
    """(overspend, ledger/job mismatches, running totals that differ from the entries)."""
    user_limit, team_budget = budgets(name, requests)
    store = await open_store(url)
    try:
        over_users, over_teams, mismatches = await audit(
            store, to_uc(user_limit), to_uc(team_budget)
        )
        report = await book_on(store, name, requests).ledger.verify()
    finally:
        await store.close()
    return over_users + over_teams, mismatches, len(report.differences)


async def scenario(databases: Databases, name: str, requests: int, users: int) -> str:
    """All requests from one process (the bot), started at once."""
    url = await prepared(databases, name, requests)
    try:
        store = await open_store(url)
        try:
            book = book_on(store, name, requests)
            people = people_of(users)
            started = time.perf_counter()
            results = await asyncio.gather(*(one(book, people[n % users]) for n in range(requests)))
            elapsed = time.perf_counter() - started
        finally:
            await store.close()
        overspend, mismatches, totals = await checked(url, name, requests)
    finally:
        await databases.drop(url)
    admitted = sum(1 for ok, _ in results if ok)
    ms = [latency * 1000 for _, latency in results]
    return line(name, requests, admitted, elapsed, ms, overspend, mismatches, totals)


async def child(url: str, name: str, first: str, count: str, users: str, requests: str) -> None:
    """Child process: on the parent's go line, `count` concurrent accepts on the shared database."""
    store = await open_store(url)
    try:
        book = book_on(store, name, int(requests))
        people = people_of(int(users))
        print("READY", flush=True)
        await read_stdin_line()
        started = time.perf_counter()
        begin = int(first)
        results = await asyncio.gather(
            *(one(book, people[n % len(people)]) for n in range(begin, begin + int(count)))
        )
        elapsed = time.perf_counter() - started
        print(f"DONE {sum(1 for ok, _ in results if ok)} {elapsed:.4f}", flush=True)
        await wait_for_stdin_eof()
    finally:
        await store.close()


async def multi(databases: Databases, name: str, requests: int, users: int, processes: int) -> str:
    """The same requests split over `processes` processes sharing one database (the bot
    and, say, `sora-bot admin` or a second bot): atomicity must hold across connections."""
    share = requests // processes
    url = await prepared(databases, name, requests)  # migrated before the children start
    kids: list[asyncio.subprocess.Process] = []
    try:
        try:
            for i in range(processes):
                args = (url, name, str(i * share), str(share), str(users), str(requests))
                kids.append((await spawn(__file__, "--role", "child", *args))[0])
            started = time.perf_counter()
            for kid in kids:
                assert kid.stdin is not None
                kid.stdin.write(b"go\n")
                await kid.stdin.drain()
            admitted = 0
            for kid in kids:
                assert kid.stdout is not None
                done = (await asyncio.wait_for(kid.stdout.readline(), 300)).decode().split()
                admitted += int(done[1])
            elapsed = time.perf_counter() - started
            for kid in kids:
                await stop(kid)
        finally:
            for kid in kids:
                if kid.returncode is None:
                    kid.kill()
                    await kid.wait()
        overspend, mismatches, totals = await checked(url, name, requests)
    finally:
        await databases.drop(url)
    return line(
        f"{name} x{processes}p", share * processes, admitted, elapsed, [], overspend,
        mismatches, totals,
    )  # fmt: skip


async def run(
    requests: int, users: int, repeat: int, processes: int, history: list[int], where: str
) -> None:
    header = (
        f"{'budget':<22} {'reqs':>5} {'admitted':>8} {'expected':>8} {'decisions/s':>11} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'overspend':>9} {'mismatch':>9} {'totals':>6}"
    )
    databases = Databases(where)
    try:
        print(
            f"{requests} concurrent JobBook.accept calls from {users} users in {WORKSPACES} "
            f"workspaces on {databases.engine}; target >= 500/s, overspend 0, totals 0"
        )
        print(header)
        print("-" * len(header))
        for _ in range(repeat):
            for name in ("roomy", "tight"):
                print(await scenario(databases, name, requests, users))
        names = ["roomy", "tight", *(f"history{entries}" for entries in history)]
        if processes > 1:
            for name in ("roomy", "tight"):
                print(await multi(databases, name, requests, users, processes))
        for name in names[2:]:
            print(await scenario(databases, name, requests, users))
            if processes > 1:
                print(await multi(databases, name, requests, users, processes))
    finally:
        await databases.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="also split over N processes")
    parser.add_argument(
        "--history",
        default="0,20000,100000",
        help="also: user and team budgets both checked, after N earlier entries this period",
    )
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="sqlite (a temp file, default), postgresql (a throwaway server, tests/pg.py) or "
        "postgresql://user@host:port/db (a server where the bench may create databases)",
    )
    parser.add_argument("--role", choices=["child"], help=argparse.SUPPRESS)
    parser.add_argument("values", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "child":
        asyncio.run(child(*args.values))
    else:
        history = [int(x) for x in args.history.split(",") if x]
        asyncio.run(
            run(
                args.requests,
                args.users,
                args.repeat,
                args.processes,
                history,
                args.database_url,
            )
        )
