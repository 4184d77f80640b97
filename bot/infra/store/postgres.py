"""The PostgreSQL engine (asyncpg): a connection pool shared by every coroutine.

Invariants:
- ONE WRITER: every `transaction()` first takes the transaction-scoped advisory lock
  `WRITE_LOCK` (`pg_advisory_xact_lock`), released by its COMMIT or ROLLBACK. Write
  transactions are thereby serialised across coroutines, processes and replicas exactly as
  SQLite's `BEGIN IMMEDIATE` serialises them (engine.py's one-writer rule): admission,
  settlement and state transitions read then write with no other writer in between, and one
  lock cannot deadlock.
- WRITE GATE: a process sends at most ONE transaction at a time to wait for that lock (an
  `asyncio.Lock` taken before a pooled connection is): the lock admits one writer of the
  whole deployment anyway, and a pool whose connections all sit waiting for it starves this
  process's reads, admissions and row writes (2,000 jobs finishing across three replicas
  queued a thousand writes; their status reads and progress writes then waited for a
  connection). Waiting in the process also keeps `statement_timeout` for statements: the
  lock's queue in the server is at most one transaction per process.
- ADMISSIONS are the one exception (`admission()`, engine.py): they insert a new job and its
  hold and check the room against the totals rows their own upsert returns, so the upsert's
  row locks (user's row, then team's, in every statement that moves totals) order two
  admissions of one user or team, and one that waits re-reads the committed row (READ
  COMMITTED's upsert). They never take the write lock, so admissions from several processes
  run side by side instead of queueing behind every state change; a writer holding the lock
  waits at most for an admission's row lock, never the reverse (no cycle, no deadlock).
- ROW WRITES (`row_write()`) are the other: one UPDATE that reads nothing first and carries
  every condition it depends on in its WHERE (a job's progress: `status = 'submitted' AND
  (lease_owner IS NULL OR lease_owner = me)`; a renewal: `lease_owner = me`), sent without a
  transaction around it (the statement commits on its own; the fence read that may follow
  needs no atomicity with it). A writer under the lock that changes such a row either commits
  first (the UPDATE re-checks the row and does nothing) or waits for the row lock; a row
  write never waits for the write lock. A single-row one holds one lock, so it is in no
  cycle; a renewal locks only its replica's own open jobs, which a writer under the lock
  locks one at a time (a job's transition, then ledger rows a renewal never touches) or
  claims after re-checking them (`FREE`, job_rows.py). Should a cycle still form, the
  server's deadlock check fails one statement and its loop retries it.
- Write transactions are READ COMMITTED on purpose: each statement after the lock sees every
  transaction committed before it (a lock is released only once its commit is visible); a
  snapshot taken before the lock wait (REPEATABLE READ) would miss the previous writer's work.
  Advisory locks are per database: bots on other databases of one server never wait for it.
- Reads (`reading()`) take a pooled connection without the lock, in a READ ONLY, REPEATABLE
  READ transaction: a few reads in a row see one committed snapshot. A glance (`glance()`,
  one read statement) runs without a transaction: the statement is its own snapshot.
- A connection goes back to the pool with its transaction ended and no session state to
  undo: nothing here SETs, LISTENs (the listening connection is outside the pool), holds a
  session advisory lock or a cursor, so the pool's reset is asyncpg's own rollback of an
  open transaction only (`_keep_session`), not its RESET ALL round trip on every release.
- Every connection has `statement_timeout` (30 s: a wait for the lock counts) and
  `application_name` `sora-bot`.
- A connection the server closed (a restart) is replaced by the pool on the next acquire. A
  connection found dead before the caller's first statement is retried once (nothing of the
  caller ran); a failure after that is raised, never retried here: the outcome of a COMMIT
  whose answer was lost is unknown, and the tracker's and dispatcher's loops retry their work.
- The row modules' `?` placeholders become `$1…$n` (never inside a string literal or a quoted
  name), once per SQL text.
- Wake-ups (engine.py's `Wakeups`) are LISTEN/NOTIFY: `notify` is `pg_notify` on a pooled
  connection (every replica listening on the database hears it, this one included);
  `listen` keeps ONE dedicated connection outside the pool with asyncpg's `add_listener`
  for every channel asked, and a keeper task that pings it every LISTEN_PING seconds and,
  once it dropped (a server restart, a cut network), connects and listens again, retrying
  every LISTEN_RETRY seconds. A word sent while nothing listened is lost: wake-ups are
  hints, the tracker still polls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

import asyncpg

from bot.domain.errors import ConfigError
from bot.infra.store.engine import Listener, Row, Store, Tx, describe_postgres, migrate

log = logging.getLogger(__name__)
LISTEN_RETRY = 1.0  # seconds between attempts to get the listening connection back
LISTEN_PING = 5.0  # seconds between checks that the listening connection is alive

#: The advisory lock key of the one-writer rule (any constant; "sora" in ASCII).
WRITE_LOCK = 0x736F7261
_WRITE_LOCK_SQL = f"SELECT pg_advisory_xact_lock({WRITE_LOCK})"
STATEMENT_TIMEOUT_MS = 30_000
APPLICATION_NAME = "sora-bot"

#: What a connection the server dropped raises (a restart, a network cut).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
    OSError,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy
    from asyncpg.transaction import Transaction

    PooledConnection = PoolConnectionProxy[asyncpg.Record]

#: What opening the pool raises when the server cannot be used (unreachable, no such database,
#: refused credentials).
OPEN_ERRORS: tuple[type[BaseException], ...] = (asyncpg.PostgresError, *CONNECTION_ERRORS)

#: What connecting or pinging the listening connection raises when it cannot be used.
LISTEN_ERRORS: tuple[type[BaseException], ...] = (*OPEN_ERRORS, TimeoutError)

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\?")
_RETURNS_ROWS = ("SELECT", "WITH", "VALUES", "SHOW", "TABLE")


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> tuple[str, bool]:
    """(`sql` with `?` → `$1…$n` outside quotes, whether it returns rows)."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(0) != "?":
            return match.group(0)
        count += 1
        return f"${count}"

    text = _TOKEN.sub(number, sql)
    words = sql.split(None, 1)
    returns = (bool(words) and words[0].upper() in _RETURNS_ROWS) or " RETURNING " in sql.upper()
    return text, returns


class _Cursor:
    def __init__(self, found: Sequence[Row], rowcount: int) -> None:
        self._rows = found
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        return self._rowcount

    async def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> Sequence[Row]:
        return list(self._rows)


def _changed(status: str) -> int:
    """`UPDATE 3` → 3, `INSERT 0 1` → 1; -1 when the status names no count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


class _Tx:
    def __init__(self, conn: PooledConnection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        text, returns = translate(sql)
        if returns:
            found: Sequence[Row] = await self._conn.fetch(text, *params)
            return _Cursor(found, len(found))
        status: str = await self._conn.execute(text, *params)
        return _Cursor((), _changed(status))


class PostgresStore(Store):
    """Owns the pool. Use `await PostgresStore.open(url)` and `await store.close()`."""

    engine = "postgresql"

    def __init__(self, pool: asyncpg.Pool, where: str, url: str = "") -> None:
        self._pool = pool
        self.where = where
        self._url = url  # for the listening connection only; never logged (a password)
        self._channels: set[str] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        #: The process's turn at the write lock (the module docstring's WRITE GATE).
        self._write_gate = asyncio.Lock()

    @staticmethod
    async def open(url: str, *, pool_size: int = 10) -> PostgresStore:
        where = describe_postgres(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                reset=_keep_session,
                server_settings={
                    "application_name": APPLICATION_NAME,
                    "statement_timeout": str(STATEMENT_TIMEOUT_MS),
                },
            )
        except OPEN_ERRORS as exc:
            # The server's words ("database "x" does not exist", "password authentication
            # failed for user …") name no password; the URL is not repeated.
            raise ConfigError(f"cannot open the {where} (DATABASE_URL): {exc}") from None
        store = PostgresStore(pool, where, url)
        try:
            await migrate(store)
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await self._pool.close()

    # -- wake-ups: LISTEN/NOTIFY ---------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    async def listen(self, channel: str, callback: Listener) -> None:
        """Call `callback(payload)` for every NOTIFY on `channel`, from any replica; returns
        once this process listens (at most 10 s the first time; it keeps trying after)."""
        self._listeners().setdefault(channel, []).append(callback)
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._keeper is not None:  # listen on the new channel too: reconnect
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        self._connected.clear()
        self._keeper = asyncio.create_task(self._keep_listening(), name="pg-listen")
        with suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await self._connected.wait()

    def _on_notification(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        self._deliver(channel, str(payload))

    async def _keep_listening(self) -> None:
        lost = False
        while True:
            try:
                conn = await asyncpg.connect(
                    self._url, server_settings={"application_name": f"{APPLICATION_NAME}-listen"}
                )
            except LISTEN_ERRORS as exc:
                if not lost:
                    log.warning("cannot listen for wake-ups on the %s: %s", self.where, exc)
                lost = True
                await asyncio.sleep(LISTEN_RETRY)
                continue
            try:
                for channel in sorted(self._channels):
                    await conn.add_listener(channel, self._on_notification)
                self._connected.set()
                if lost:
                    log.info("listening for wake-ups again on the %s", self.where)
                lost = False
                await _until_dropped(conn)
            except CONNECTION_ERRORS:
                pass
            finally:
                self._connected.clear()
                with suppress(Exception):
                    await conn.close(timeout=1.0)
            log.warning("the wake-up connection to the %s dropped; listening again", self.where)
            lost = True

    async def _begin(
        self, *, write: bool, lock: bool = True
    ) -> tuple[PooledConnection, Transaction]:
        """A pooled connection inside a started transaction (holding the write lock when
        `write` and `lock`); a connection found dead here is replaced once."""
        for attempt in (1, 2):
            conn = await self._pool.acquire()
            try:
                if write:
                    tr = conn.transaction()
                    await tr.start()
                    if lock:
                        await conn.execute(_WRITE_LOCK_SQL)
                else:
                    tr = conn.transaction(isolation="repeatable_read", readonly=True)
                    await tr.start()
            except CONNECTION_ERRORS:
                await self._pool.release(conn)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                await self._pool.release(conn)
                raise
            return conn, tr
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def _transaction(self, *, write: bool, lock: bool = True) -> AsyncIterator[_Tx]:
        if write and lock:
            # the gate first: one connection of this process at a time waits for the lock
            async with self._write_gate, self._pooled(write=True, lock=True) as tx:
                yield tx
            return
        async with self._pooled(write=write, lock=lock) as tx:
            yield tx

    @asynccontextmanager
    async def _pooled(self, *, write: bool, lock: bool) -> AsyncIterator[_Tx]:
        conn, tr = await self._begin(write=write, lock=lock)
        try:
            try:
                yield _Tx(conn)
            except BaseException:
                if not conn.is_closed():
                    with suppress(*CONNECTION_ERRORS):  # the server ended it: not committed
                        await tr.rollback()
                raise
            else:
                await tr.commit()
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[_Tx]:
        """A pooled connection with no transaction: each statement commits on its own (one
        found closed already, a restarted server's, is replaced once before it is used)."""
        conn = await self._pool.acquire()
        if conn.is_closed():
            await self._pool.release(conn)
            conn = await self._pool.acquire()
        try:
            yield _Tx(conn)
        finally:
            await self._pool.release(conn)

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """BEGIN; the write lock; … COMMIT (ROLLBACK on any exception)."""
        return self._transaction(write=True)

    def admission(self) -> AbstractAsyncContextManager[Tx]:
        """BEGIN; … COMMIT without the write lock: ordered by the totals' row locks."""
        return self._transaction(write=True, lock=False)

    def row_write(self) -> AbstractAsyncContextManager[Tx]:
        """One self-contained UPDATE, no lock, no transaction: ordered by its row locks
        (`Store.row_write`)."""
        return self._autocommit()

    def reading(self) -> AbstractAsyncContextManager[Tx]:
        """A pooled connection in a read-only snapshot; no lock."""
        return self._transaction(write=False)

    def glance(self) -> AbstractAsyncContextManager[Tx]:
        """A pooled connection for one read statement, no transaction (`Store.glance`)."""
        return self._autocommit()


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset after asyncpg's own (which rolls back a transaction left open): there
    is no session state to undo (the module docstring)."""


async def _until_dropped(conn: asyncpg.Connection) -> None:
    """Return when the listening connection is closed or stops answering (a cut network
    shows only when something is sent: a trivial query every LISTEN_PING seconds)."""
    closed = asyncio.Event()
    conn.add_termination_listener(lambda _conn: closed.set())  # the server ended it
    while not conn.is_closed():
        with suppress(TimeoutError):
            async with asyncio.timeout(LISTEN_PING):
                await closed.wait()
        if closed.is_set() or conn.is_closed():
            return
        try:
            async with asyncio.timeout(LISTEN_PING):
                await conn.execute("SELECT 1")
        except LISTEN_ERRORS:
            return
