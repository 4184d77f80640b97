"""The SQLite connection: transactions, reads, migrations and the `meta` secrets.

Invariants:
- One aiosqlite connection per process, in WAL mode with a busy timeout, so another process
  (`sora-bot admin …` next to a running bot) can read at any time and write after waiting.
- Every write that reads first (admission, settlement, state transitions) runs inside
  `transaction()`, which is `BEGIN IMMEDIATE` under an asyncio lock: within this process
  writers are serialised by the lock, across processes by SQLite's write lock.
- Reads share that lock, so a read never observes another coroutine's open transaction.
- Schema changes are the numbered migrations of `bot.infra.store.migrations`, applied once each, in
  order, recorded in `schema_migrations`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.infra.store.migrations import MIGRATIONS

#: What the row modules are handed: the connection inside a transaction or a read.
Tx = aiosqlite.Connection
Row = aiosqlite.Row


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def parse_ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


class Store:
    """Owns the connection. Use `await Store.open(path)` and `await store.close()`."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str) -> Store:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        store = cls(conn, path)
        try:
            await store._migrate()
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self._conn.close()

    async def _migrate(self) -> None:
        async with self.transaction() as tx:
            await tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            cur = await tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            row = await cur.fetchone()
            current = int(row[0]) if row else 0
            for version, script in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        await tx.execute(statement)
                await tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, now_iso()),
                )

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on any exception)."""
        async with self._write_lock:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Tx]:
        """The connection for a few reads in a row, never inside another coroutine's write."""
        async with self._write_lock:
            yield self._conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read for tests, benchmarks and operators' tools; product code uses the row
        modules of this package."""
        async with self.reading() as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def meta_secret(self, key: str) -> str:
        """A random secret created once and kept in the database (callback path, media keys)."""
        async with self.transaction() as tx:
            cur = await tx.execute("SELECT value FROM meta WHERE key = ?", (key,))
            row = await cur.fetchone()
            if row is not None:
                return str(row[0])
            value = secrets.token_urlsafe(32)
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value


async def rows(tx: Tx, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    cur = await tx.execute(sql, params)
    return list(await cur.fetchall())


async def one(tx: Tx, sql: str, params: Sequence[Any] = ()) -> Row | None:
    cur = await tx.execute(sql, params)
    return await cur.fetchone()
