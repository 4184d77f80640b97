"""The SQLite engine: one aiosqlite connection per process.

Invariants:
- WAL mode with a busy timeout, so another process (`sora-bot admin …` next to a running bot)
  can read at any time and write after waiting.
- `transaction()` is `BEGIN IMMEDIATE` under an asyncio lock: within this process writers are
  serialised by the lock, across processes by SQLite's write lock (engine.py's one-writer
  rule).
- Reads share that lock, so a read never observes another coroutine's open transaction.
- A transaction whose caller is cancelled at any point (even inside BEGIN) is rolled back: the
  one connection is never left in a transaction, which would fail every later BEGIN.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.infra.store.engine import Row, Store, migrate


class _Cursor:
    def __init__(self, cursor: aiosqlite.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchone(self) -> Row | None:
        row: Row | None = await self._cursor.fetchone()
        return row

    async def fetchall(self) -> Sequence[Row]:
        return list(await self._cursor.fetchall())


class _Tx:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        return _Cursor(await self._conn.execute(sql, params))


class SqliteStore(Store):
    """Owns the connection. Use `await SqliteStore.open(path)` and `await store.close()`."""

    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._tx = _Tx(conn)
        self.path = path
        self._write_lock = asyncio.Lock()

    @staticmethod
    async def open(path: str) -> SqliteStore:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 10000")
        try:
            await _use_wal(conn)
        except BaseException:
            await conn.close()
            raise
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        store = SqliteStore(conn, path)
        try:
            await migrate(store)
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on any exception)."""
        async with self._write_lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                # Cancelled while waiting (a stopping task, a job no longer followed here): the
                # BEGIN still runs on aiosqlite's thread, and this ROLLBACK runs after it, so
                # the connection is never left inside a transaction nobody will end.
                with contextlib.suppress(Exception):
                    await self._conn.execute("ROLLBACK")
                raise
            try:
                yield self._tx
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[_Tx]:
        """The connection for a few reads in a row, never inside another coroutine's write."""
        async with self._write_lock:
            yield self._tx


#: How long opening waits for WAL mode while another connection holds the file (seconds).
WAL_WAIT = 10.0


async def _use_wal(conn: aiosqlite.Connection) -> None:
    """`PRAGMA journal_mode = WAL`. Switching a file's journal mode needs it to itself and
    SQLite answers "database is locked" at once instead of waiting out `busy_timeout`, so two
    processes opening one new file together (a bot and `sora-bot admin`, two test cores) retry
    for up to `WAL_WAIT` seconds; a file already in WAL mode answers at once."""
    delay, waited = 0.01, 0.0
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or waited >= WAL_WAIT:
                raise
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.5)
