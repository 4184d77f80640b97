"""The schema's history: a database written by an earlier release opens, migration 8 moves
its amounts to EvoLink's uc (1 credit = 10,000 uc) without changing what they are worth, and
migration 9 fills the ledger's running totals from the entries there are."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.domain.models import Requester
from bot.infra.store import Store, ledger_rows
from bot.infra.store.migrations import MIGRATIONS
from bot.services.ledger import Ledger

UTC = ZoneInfo("UTC")


def _database_at(path: Path, version: int) -> None:
    """A database as a release with the first `version` migrations left it."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        for number, script in enumerate(MIGRATIONS[:version], start=1):
            conn.executescript(script)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (number,))


def november_ledger(store: Store) -> Ledger:
    """The ledger as it stood in mid-November 2026 (the period the old rows are in)."""
    return Ledger(
        store,
        default_limit=Decimal(300),
        default_team_budget=Decimal(0),
        period_kind="month",
        timezone=UTC,
        now=lambda: dt.datetime(2026, 11, 15, tzinfo=UTC),
    )


async def test_milli_credit_amounts_become_uc_worth_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _database_at(path, 7)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO jobs (id, platform, workspace, user, status, model, prompt, duration,"
            " aspect_ratio, request_json, reserved_mc, charged_mc, period_start, created_at,"
            " updated_at) VALUES ('j1', 'slack', 'T1', 'U1', 'delivered', 'sora-2-preview', 'a',"
            " 4, '1280x720', '{}', 23040, 23040, '2026-11-01', 'then', 'then')"
        )
        conn.executemany(
            "INSERT INTO ledger (at, period_start, platform, workspace, user, kind, amount_mc,"
            " settles_mc, job_id) VALUES ('then', '2026-11-01', 'slack', 'T1', 'U1', ?, ?, ?, ?)",
            [("grant", 5000, 0, None), ("hold", 23040, 0, "j1"), ("capture", 23040, 23040, "j1")],
        )
        conn.execute("INSERT INTO limits VALUES ('slack', 'T1', 'U1', 100000, 'then', 'admin')")
    store = await Store.open(str(path))
    try:
        async with store.reading() as conn:
            cur = await conn.execute("SELECT reserved_uc, charged_uc, user_id FROM jobs")
            assert tuple(await cur.fetchone() or ()) == (230_400, 230_400, "U1")
        ledger = november_ledger(store)
        balance = await ledger.balance(Requester(platform="slack", workspace="T1", user="U1"))
        # 100 credits allowed + 5 granted − 23.04 used: the same credits as before the move.
        assert balance.used == Decimal("23.04") and balance.held == 0
        assert balance.limit == Decimal(100) and balance.granted == Decimal(5)
    finally:
        await store.close()


async def test_a_new_database_has_every_migration(tmp_path: Path) -> None:
    store = await Store.open(str(tmp_path / "new.db"))
    try:
        rows = await store.fetchall("SELECT MAX(version) FROM schema_migrations")
        assert rows[0][0] == len(MIGRATIONS) == store.schema_version
    finally:
        await store.close()


async def test_a_version_8_ledger_gets_running_totals_worth_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    _database_at(path, 8)
    with sqlite3.connect(path) as conn:
        for job, user in (("j1", "U1"), ("j2", "U2"), ("j3", "U2")):
            conn.execute(
                "INSERT INTO jobs (id, platform, workspace, user_id, status, model, prompt,"
                " duration, aspect_ratio, request_json, reserved_uc, period_start, created_at,"
                " updated_at) VALUES (?, 'slack', 'T1', ?, 'pending', 'm', 'a', 4,"
                " '1280x720', '{}', 0, '2026-11-01', 'then', 'then')",
                (job, user),
            )
        conn.executemany(
            "INSERT INTO ledger (at, period_start, platform, workspace, user_id, kind, amount_uc,"
            " settles_uc, job_id) VALUES ('then', ?, 'slack', 'T1', ?, ?, ?, ?, ?)",
            [
                ("2026-10-01", "U1", "grant", 70_000, 0, None),
                ("2026-11-01", "U1", "grant", 50_000, 0, None),
                ("2026-11-01", "U1", "hold", 230_400, 0, "j1"),
                ("2026-11-01", "U1", "capture", 216_108, 230_400, "j1"),
                ("2026-11-01", "U2", "hold", 40_000, 0, "j2"),
                ("2026-11-01", "U2", "release", 0, 40_000, "j2"),
                ("2026-11-01", "U2", "hold", 12_345, 0, "j3"),
            ],
        )
        conn.execute("INSERT INTO limits VALUES ('slack', 'T1', '', 1000000, 'then', 'admin')")
    store = await Store.open(str(path))
    try:
        async with store.reading() as tx:
            stored = await ledger_rows.all_stored_totals(tx)
            assert stored == await ledger_rows.recomputed_totals(tx)
        assert stored[("2026-11-01", "slack", "T1", "")] == ledger_rows.Sums(
            50_000, 216_108, 12_345, 3
        )
        assert stored[("2026-10-01", "slack", "T1", "U1")] == ledger_rows.Sums(70_000, 0, 0, 0)
        ledger = november_ledger(store)
        balance = await ledger.balance(Requester(platform="slack", workspace="T1", user="U2"))
        assert balance.held == Decimal("1.2345") and balance.used == 0
        assert balance.team_used == Decimal("21.6108") and balance.team_held == Decimal("1.2345")
        assert (await ledger.verify()).agrees
    finally:
        await store.close()
