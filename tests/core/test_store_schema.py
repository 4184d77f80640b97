"""The two engines keep one schema and one behaviour: PostgreSQL's baseline equals SQLite's
schema after its migrations (tables, columns, nullability, types, defaults, indexes), a new
PostgreSQL database records the baseline as version 8 and every later migration, two stores
starting together migrate once, placeholders are translated outside quotes only, and a
store and a whole bot survive a PostgreSQL restart."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import ConfigError
from bot.domain.models import JobStatus, Surface
from bot.infra.store import Store, open_store
from bot.infra.store.migrations import MIGRATIONS
from bot.infra.store.postgres import translate
from bot.infra.store.postgres_baseline import POSTGRES_BASELINE_VERSION
from tests.conftest import ALICE
from tests.pg import PgServer
from tests.support import RecordingPort, running_core, running_simulator

Schema = dict[str, dict[str, Any]]


def _kind(declared: str) -> str:
    return "int" if "INT" in declared.upper() else declared.lower().split()[0]


def _default(value: str | None) -> str | None:
    return None if value is None else re.sub(r"::[a-z ]+$", "", value)


async def _sqlite_schema(store: Store) -> Schema:
    schema: Schema = {}
    tables = await store.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    for (table,) in [tuple(t) for t in tables]:
        cols = await store.fetchall(f"PRAGMA table_info({table})")
        indexes = {}
        for ix in await store.fetchall(f"PRAGMA index_list({table})"):
            if ix["origin"] == "pk":
                continue
            names = [r["name"] for r in await store.fetchall(f"PRAGMA index_info({ix['name']})")]
            indexes[ix["name"]] = (bool(ix["unique"]), bool(ix["partial"]), names)
        schema[table] = {
            "columns": {
                c["name"]: (bool(c["notnull"] or c["pk"]), _kind(c["type"]), c["dflt_value"])
                for c in cols
            },
            "primary_key": [c["name"] for c in sorted(cols, key=lambda c: c["pk"]) if c["pk"]],
            "indexes": indexes,
        }
    return schema


async def _postgres_schema(store: Store) -> Schema:
    schema: Schema = {}
    tables = await store.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    for (table,) in [tuple(t) for t in tables]:
        cols = await store.fetchall(
            "SELECT column_name, is_nullable, data_type, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ?",
            (table,),
        )
        found = await store.fetchall(
            "SELECT c.relname, ix.indisunique, ix.indisprimary, ix.indpred IS NOT NULL,"
            " ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)"
            "   JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum"
            "   ORDER BY k.n)"
            " FROM pg_index ix JOIN pg_class c ON c.oid = ix.indexrelid"
            " JOIN pg_class t ON t.oid = ix.indrelid WHERE t.relname = ?",
            (table,),
        )
        schema[table] = {
            "columns": {c[0]: (c[1] == "NO", _kind(c[2]), _default(c[3])) for c in cols},
            "primary_key": next((list(r[4]) for r in found if r[2]), []),
            "indexes": {r[0]: (r[1], r[3], list(r[4])) for r in found if not r[2]},
        }
    return schema


async def test_the_postgresql_baseline_is_sqlites_schema(tmp_path: Path, pg_url: str) -> None:
    lite, pg = await open_store(f"sqlite:///{tmp_path / 'a.db'}"), await open_store(pg_url)
    try:
        on_sqlite, on_postgres = await _sqlite_schema(lite), await _postgres_schema(pg)
    finally:
        await lite.close()
        await pg.close()
    assert sorted(on_sqlite) == sorted(on_postgres)
    for table in on_sqlite:
        assert on_sqlite[table] == on_postgres[table], table
    # what makes a hold settle once, on both
    assert on_postgres["ledger"]["indexes"]["ledger_one_hold"] == (True, True, ["job_id"])
    assert on_postgres["ledger"]["indexes"]["ledger_one_settlement"] == (True, True, ["job_id"])


async def test_a_new_postgresql_database_starts_at_the_baseline(pg_server: PgServer) -> None:
    url = pg_server.empty_database()
    store = await open_store(url)
    try:
        versions = [r[0] for r in await store.fetchall("SELECT version FROM schema_migrations")]
        later = list(range(POSTGRES_BASELINE_VERSION + 1, len(MIGRATIONS) + 1))
        assert sorted(versions) == [POSTGRES_BASELINE_VERSION, *later]
        assert max(versions) == store.schema_version
    finally:
        await store.close()
    again = await open_store(url)  # a second start applies nothing
    try:
        assert len(await again.fetchall("SELECT version FROM schema_migrations")) == len(versions)
    finally:
        await again.close()


async def test_two_stores_starting_together_migrate_once(pg_server: PgServer) -> None:
    url = pg_server.empty_database()
    stores = await asyncio.gather(*(open_store(url, pool_size=2) for _ in range(4)))
    try:
        found = await stores[0].fetchall(
            "SELECT version, COUNT(*) FROM schema_migrations GROUP BY version"
        )
        assert {r[1] for r in found} == {1}
        assert max(r[0] for r in found) == len(MIGRATIONS)
    finally:
        for store in stores:
            await store.close()


def test_placeholders_are_numbered_outside_quotes_only() -> None:
    text, returns = translate("SELECT '?', \"a?\" FROM t WHERE x = ? AND y = 'it''s ?' OR z = ?")
    assert text == "SELECT '?', \"a?\" FROM t WHERE x = $1 AND y = 'it''s ?' OR z = $2"
    assert returns
    assert translate("UPDATE t SET a = ? WHERE b = ?") == (
        "UPDATE t SET a = $1 WHERE b = $2",
        False,
    )
    assert translate("INSERT INTO t (a) VALUES (?) RETURNING id")[1]


async def test_rowcount_counts_changed_rows_on_each_engine(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        async with store.transaction() as tx:
            for key in ("a", "b", "c"):
                await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, "v"))
            changed = await tx.execute("UPDATE meta SET value = ? WHERE key != ?", ("w", "a"))
            assert changed.rowcount == 2
            ignored = await tx.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", ("a", "x")
            )
            assert ignored.rowcount == 0
        row = await store.fetchone("SELECT value FROM meta WHERE key = ?", ("a",))
        assert row is not None and row["value"] == row[0] == "v"
    finally:
        await store.close()


async def test_a_store_works_again_after_postgresql_restarts(
    pg_server: PgServer, pg_url: str
) -> None:
    store = await open_store(pg_url, pool_size=3)
    try:
        secret = await store.meta_secret("restart")
        async with store.reading() as tx:  # a pooled connection is idle when the server goes
            await tx.execute("SELECT 1")
        await asyncio.to_thread(pg_server.restart)
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("after", "yes"))
        row = await store.fetchone("SELECT value FROM meta WHERE key = ?", ("after",))
        assert row is not None and row[0] == "yes"
        assert await store.meta_secret("restart") == secret
    finally:
        await store.close()


async def test_a_database_that_cannot_be_opened_is_named_without_the_password(
    pg_server: PgServer,
) -> None:
    url = pg_server.url("no_such_db").replace("postgres@", "postgres:s3cret-pw@")
    with pytest.raises(ConfigError) as refused:
        await open_store(url)
    message = str(refused.value)
    assert "no_such_db" in message and "does not exist" in message
    assert "s3cret-pw" not in message


async def test_a_job_in_flight_is_delivered_across_a_postgresql_restart(
    tmp_path: Path, pg_server: PgServer, pg_url: str
) -> None:
    """The whole bot on PostgreSQL: the database restarts while EvoLink renders; the tracker's
    next reads and writes work on fresh connections and the job ends delivered, charged once."""
    async with running_simulator(task_seconds=1.5) as sim:
        port = RecordingPort("test")
        async with running_core(tmp_path, sim, ports=[port], database_url=pg_url) as rc:
            service = rc.core.service
            job = await service.submit(ALICE, service.parse("a lighthouse at dusk"), Surface())
            await port.wait_for(job.id, "progress")  # EvoLink has the task
            await asyncio.to_thread(pg_server.restart)
            await port.wait_for(job.id, "delivered", timeout=20)
            await rc.core.tracker.wait_idle(10)
            done = await service.get_job(job.id)
            balance = await service.balance(ALICE)
        assert done.status == JobStatus.DELIVERED
        assert balance.held == 0 and balance.used == done.charged
        assert len([r for r in sim.requests if r.kind == "submit"]) == 1


async def test_stores_opening_one_new_sqlite_file_together_all_open(tmp_path: Path) -> None:
    """Switching a new file to WAL needs it to itself and SQLite does not wait for that: a bot
    and `sora-bot admin` (or two test cores) opening one new file together used to fail
    with "database is locked" now and then."""
    for attempt in range(15):
        path = str(tmp_path / f"together-{attempt}.db")
        stores = await asyncio.gather(*(Store.open(path) for _ in range(4)))
        try:
            assert {s.schema_version for s in stores} == {len(MIGRATIONS)}
        finally:
            await asyncio.gather(*(s.close() for s in stores))
