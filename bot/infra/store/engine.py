"""The engine seam: what the row modules and the owners see of a database, whichever it is.

    Store     an open database: `transaction()`, `reading()`, `meta_secret`, `close()`
    Tx        what a row module is handed: `await tx.execute(sql, params)` → `Cursor`
    Cursor    `rowcount`, `await fetchone()`, `await fetchall()`
    Row       a result row, indexed by position and by column name (`row[0]`, `row["id"]`)
    Wakeups   `notify(channel, payload)` / `listen(channel, callback)`: a word to whoever
              listens — in this process (SQLite), on every replica of the database
              (PostgreSQL: LISTEN/NOTIFY); a hint only, never a decision (no delivery promise)

    open_store(url)   the one place that picks the engine from DATABASE_URL:
                      `sqlite:///path` (bot/infra/store/sqlite.py) or
                      `postgresql://user:pass@host:port/db` (bot/infra/store/postgres.py)

Invariants:
- The row modules hold ONE SQL text per statement, with `?` placeholders, in SQL both engines
  accept; an engine translates the placeholders itself (PostgreSQL: `$1…$n`, once per text).
- Every write that reads first (admission, settlement, state transitions) runs inside
  `transaction()`, and write transactions are serialised: on SQLite by `BEGIN IMMEDIATE`
  (one writer per file), on PostgreSQL by one transaction-scoped advisory lock that every
  `transaction()` takes first (one writer per database, across processes and replicas).
  A transaction therefore never sees another's uncommitted money or status change, and
  check-then-write (a hold that fits, a settlement not yet written) cannot race.
- `reading()` never observes another coroutine's open transaction: reads see committed data.
- The schema is `bot.infra.store.migrations`, applied by `migrate` inside one `transaction()`
  (so two processes starting together migrate once), recorded in `schema_migrations`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.infra.store.migrations import MIGRATIONS, pending_migrations

log = logging.getLogger(__name__)

#: What a listener is called with: the notification's payload.
Listener = Callable[[str], None]


class Wakeups(Protocol):
    """Words between the processes of one database (the tracker's wake-ups)."""

    async def notify(self, channel: str, payload: str) -> None: ...

    async def listen(self, channel: str, callback: Listener) -> None: ...


class Row(Protocol):
    """A result row: `row[0]`, `row["name"]`, `row.keys()`, `dict(row)`."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Cursor(Protocol):
    """The result of one statement (rows are read at once; `rowcount` counts changed rows)."""

    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Row | None: ...

    async def fetchall(self) -> Sequence[Row]: ...


class Tx(Protocol):
    """A connection inside `transaction()` or `reading()`."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def parse_ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


async def rows(tx: Tx, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    cur = await tx.execute(sql, params)
    return list(await cur.fetchall())


async def one(tx: Tx, sql: str, params: Sequence[Any] = ()) -> Row | None:
    cur = await tx.execute(sql, params)
    return await cur.fetchone()


class Store(ABC):
    """An open database. `await open_store(url)` … `await store.close()`."""

    #: "sqlite" or "postgresql" (a migration's engine, the schema test)
    engine: str

    @staticmethod
    async def open(path: str) -> Store:
        """A SQLite file at `path` (or ":memory:"): tests and benchmarks that want a file."""
        from bot.infra.store.sqlite import SqliteStore

        return await SqliteStore.open(path)

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A write transaction (the module docstring's one-writer rule): commit at the end of
        the block, roll back on any exception."""

    def admission(self) -> AbstractAsyncContextManager[Tx]:
        """The write transaction of an admission (`JobBook.accept`): it inserts a new job and
        its hold, and checks the room against the ledger totals its own upsert returns.

        Two admissions touching one user or one team are ordered by that upsert's row locks
        (every totals upsert moves the user's row, then the team's: no deadlock), so an engine
        with row locks may run it outside the one-writer rule (PostgreSQL does); here it is a
        plain `transaction()`."""
        return self.transaction()

    def row_write(self) -> AbstractAsyncContextManager[Tx]:
        """ONE UPDATE that reads nothing first and whose WHERE carries every condition it
        depends on (a job's progress: its status and its lease; a replica's renewal of the
        leases it holds, which claims check again in their own UPDATE), so no other
        transaction can slip between a check and the write; reads may follow it (why it
        wrote nothing). Row locks order it against every other writer of that row, so an
        engine with row locks runs it outside the one-writer rule and without a transaction
        around it (PostgreSQL does: each statement commits on its own, and a replica's
        progress writes no longer queue behind every other replica's admissions, settlements
        and claims). So a body never makes a second write, and an exception after its UPDATE
        does not undo it. Here it is a plain `transaction()`."""
        return self.transaction()

    @abstractmethod
    def reading(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for a few reads in a row of committed data."""

    def glance(self) -> AbstractAsyncContextManager[Tx]:
        """A connection for ONE read statement of committed data: a statement is its own
        snapshot, so an engine may run it without a transaction around it (PostgreSQL does:
        one round trip instead of BEGIN, the read, COMMIT — the tracker's and the estimate
        loop's job reads are the most frequent statement of a busy replica). Two statements
        in one glance may see two moments; use `reading()` for them. Here it is `reading()`."""
        return self.reading()

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def schema_version(self) -> int:
        return len(MIGRATIONS)

    # -- wake-ups (in this process; PostgreSQL overrides both for every replica) --------------

    async def notify(self, channel: str, payload: str) -> None:
        """Call every listener of `channel` with `payload` (a listener's error is logged)."""
        self._deliver(channel, payload)

    async def listen(self, channel: str, callback: Listener) -> None:
        self._listeners().setdefault(channel, []).append(callback)

    def _listeners(self) -> dict[str, list[Listener]]:
        found: dict[str, list[Listener]] | None = self.__dict__.get("_wake_listeners")
        if found is None:
            found = self.__dict__["_wake_listeners"] = {}
        return found

    def _deliver(self, channel: str, payload: str) -> None:
        for callback in list(self._listeners().get(channel, ())):
            try:
                callback(payload)
            except Exception:
                log.exception("a %s listener failed", channel)

    async def reachable(self, timeout: float = 2.0) -> bool:
        """Does the database answer a trivial read within `timeout` seconds? (/healthz)"""
        try:
            async with asyncio.timeout(timeout):
                await self.fetchone("SELECT 1")
        except Exception:
            return False
        return True

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """A read for tests, benchmarks and operators' tools (read-only on PostgreSQL: a
        write goes through `transaction()`); product code uses the row modules."""
        async with self.reading() as tx:
            return await rows(tx, sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        found = await self.fetchall(sql, params)
        return found[0] if found else None

    async def meta_secret(self, key: str) -> str:
        """A random secret created once and kept in the database (callback path, media keys)."""
        async with self.transaction() as tx:
            row = await one(tx, "SELECT value FROM meta WHERE key = ?", (key,))
            if row is not None:
                return str(row[0])
            value = secrets.token_urlsafe(32)
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value


async def migrate(store: Store) -> None:
    """Apply what `schema_migrations` does not list yet, in one write transaction."""
    async with store.transaction() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        row = await one(tx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        current = int(row[0]) if row else 0
        for version, script in pending_migrations(store.engine, current):
            for statement in script.split(";"):
                if statement.strip():
                    await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, now_iso()),
            )


SQLITE_PREFIX = "sqlite://"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def engine_of(url: str) -> str:
    """The engine a DATABASE_URL names ("sqlite", "postgresql"); ValueError naming the forms."""
    if url.startswith(SQLITE_PREFIX):
        return "sqlite"
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql"
    raise ValueError(
        f"must be sqlite:///path/to/file.db or postgresql://user:pass@host:port/db, got {url!r}"
    )


def sqlite_path(url: str) -> str:
    """`sqlite:///rel.db` → `rel.db`; `sqlite:////abs.db` → `/abs.db`; `sqlite://` → memory."""
    rest = url[len(SQLITE_PREFIX) :]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    return rest[1:] if rest.startswith("/") else rest


def describe_postgres(url: str) -> str:
    """A PostgreSQL URL in words for logs, without its user or password."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "(the user's default)"
    return f"PostgreSQL database {name} on {parts.hostname or 'localhost'}:{parts.port or 5432}"


async def open_store(url: str, *, pool_size: int = 10) -> Store:
    """Open (and migrate) the database DATABASE_URL names; `pool_size` is PostgreSQL's
    connection pool (SQLite has one connection)."""
    if engine_of(url) == "sqlite":
        from bot.infra.store.sqlite import SqliteStore

        return await SqliteStore.open(sqlite_path(url))
    from bot.infra.store.postgres import PostgresStore

    return await PostgresStore.open(url, pool_size=pool_size)
