"""The SQLite store: jobs, ledger entries, limits, audit trail, and small metadata.

Invariants:
- One aiosqlite connection per process, in WAL mode with a busy timeout, so another process
  (`sora-bot admin …` next to a running bot) can read at any time and write after waiting.
- Every write that reads first (admission, settlement, state transitions) runs inside
  `transaction()`, which is `BEGIN IMMEDIATE` under an asyncio lock: within this process
  writers are serialised by the lock, across processes by SQLite's write lock.
- Schema changes are numbered migrations in `MIGRATIONS`, applied once each, in order,
  recorded in `schema_migrations`.
- Job status changes are compare-and-set (`UPDATE … WHERE status = ?`), so two actors racing
  (a cancel and a delivery) cannot both win.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.models import Job, JobStatus, Requester, Surface, VideoRequest

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, ledger, limits, audit, meta
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user TEXT NOT NULL,
        user_name TEXT,
        status TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        duration INTEGER NOT NULL,
        aspect_ratio TEXT NOT NULL,
        request_json TEXT NOT NULL,
        surface_json TEXT NOT NULL DEFAULT '{}',
        progress INTEGER NOT NULL DEFAULT 0,
        task_id TEXT,
        estimated_seconds INTEGER,
        reserved_mc INTEGER NOT NULL,
        charged_mc INTEGER,
        error_code TEXT,
        error TEXT,
        result_url TEXT,
        media_path TEXT,
        media_size INTEGER,
        period_start TEXT NOT NULL,
        parent_job_id TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        submitted_at TEXT,
        completed_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_user ON jobs(platform, workspace, user, created_at);
    CREATE INDEX jobs_task ON jobs(task_id);
    CREATE INDEX jobs_created ON jobs(created_at);
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        period_start TEXT NOT NULL,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('hold', 'capture', 'release', 'grant')),
        amount_mc INTEGER NOT NULL,
        settles_mc INTEGER NOT NULL DEFAULT 0,
        job_id TEXT REFERENCES jobs(id),
        actor TEXT,
        reason TEXT
    );
    CREATE UNIQUE INDEX ledger_one_hold ON ledger(job_id) WHERE kind = 'hold';
    CREATE UNIQUE INDEX ledger_one_settlement ON ledger(job_id)
        WHERE kind IN ('capture', 'release');
    CREATE INDEX ledger_user ON ledger(platform, workspace, user, period_start);
    CREATE INDEX ledger_team ON ledger(platform, workspace, period_start);
    CREATE TABLE limits (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user TEXT NOT NULL,
        limit_mc INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        PRIMARY KEY (platform, workspace, user)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        amount_mc INTEGER,
        reason TEXT
    );
    """,
    # 2: fair queue, approvals, alerts, role allowances
    """
    ALTER TABLE jobs ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN queue_position INTEGER;
    CREATE INDEX jobs_queue ON jobs(status, queued, created_at);
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user TEXT NOT NULL,
        user_name TEXT,
        request_json TEXT NOT NULL,
        surface_json TEXT NOT NULL DEFAULT '{}',
        admin_refs_json TEXT NOT NULL DEFAULT '{}',
        price_mc INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        decided_at TEXT,
        decided_by TEXT,
        job_id TEXT
    );
    CREATE INDEX approvals_status ON approvals(status, expires_at);
    CREATE TABLE alerts (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user TEXT NOT NULL,
        period_start TEXT NOT NULL,
        kind TEXT NOT NULL,
        threshold INTEGER NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (platform, workspace, user, period_start, kind, threshold)
    );
    CREATE TABLE role_limits (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        role TEXT NOT NULL,
        limit_mc INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        PRIMARY KEY (platform, workspace, role)
    );
    """,
    # 3: the requester's roles (Discord role allowances) travel with jobs and approvals
    """
    ALTER TABLE jobs ADD COLUMN roles_json TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE approvals ADD COLUMN roles_json TEXT NOT NULL DEFAULT '[]';
    """,
    # 4: delivery attempts (exactly-once delivery across crashes) and whether the user was told
    """
    ALTER TABLE jobs ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN told_at TEXT;
    ALTER TABLE jobs ADD COLUMN tell_attempts INTEGER NOT NULL DEFAULT 0;
    """,
)

JOB_COLUMNS = (
    "id, platform, workspace, user, user_name, status, model, prompt, duration, aspect_ratio, "
    "request_json, surface_json, progress, task_id, estimated_seconds, reserved_mc, charged_mc, "
    "error_code, error, result_url, media_path, media_size, period_start, parent_job_id, "
    "created_at, updated_at, submitted_at, completed_at, finished_at, queued, queue_position, "
    "roles_json, delivery_attempts, told_at, tell_attempts"
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def parse_ts(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def new_job_id() -> str:
    """Sortable and unguessable: milliseconds since epoch (hex) + 40 random bits."""
    millis = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return f"j{millis:011x}{secrets.token_hex(5)}"


def requester_of_row(row: aiosqlite.Row) -> Requester:
    """The requester columns shared by `jobs` and `approvals`."""
    return Requester(
        platform=row["platform"],
        workspace=row["workspace"],
        user=row["user"],
        display_name=row["user_name"],
        roles=tuple(json.loads(row["roles_json"] or "[]")),
    )


def row_to_job(row: aiosqlite.Row) -> Job:
    return Job(
        id=row["id"],
        requester=requester_of_row(row),
        request=VideoRequest.model_validate_json(row["request_json"]),
        surface=Surface.model_validate_json(row["surface_json"]),
        status=JobStatus(row["status"]),
        progress=row["progress"],
        task_id=row["task_id"],
        reserved_mc=row["reserved_mc"],
        charged_mc=row["charged_mc"],
        error_code=row["error_code"],
        error=row["error"],
        estimated_seconds=row["estimated_seconds"],
        result_url=row["result_url"],
        media_path=row["media_path"],
        media_size=row["media_size"],
        created_at=dt.datetime.fromisoformat(row["created_at"]),
        submitted_at=parse_ts(row["submitted_at"]),
        finished_at=parse_ts(row["finished_at"]),
        parent_job_id=row["parent_job_id"],
        queued=bool(row["queued"]),
        queue_position=row["queue_position"],
        completed_at=parse_ts(row["completed_at"]),
        delivery_attempts=row["delivery_attempts"],
        told_at=parse_ts(row["told_at"]),
        tell_attempts=row["tell_attempts"],
    )


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
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
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
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for a few reads in a row, never inside another coroutine's write."""
        async with self._write_lock:
            yield self._conn

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        # Reads share the lock so they never observe another coroutine's open transaction.
        async with self._write_lock:
            cur = await self._conn.execute(sql, params)
            rows = await cur.fetchall()
            return list(rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    # -- metadata --------------------------------------------------------------------------

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

    # -- jobs -------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job | None:
        row = await self.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else row_to_job(row)

    async def job_for_task(self, task_id: str) -> Job | None:
        row = await self.fetchone(f"SELECT {JOB_COLUMNS} FROM jobs WHERE task_id = ?", (task_id,))
        return None if row is None else row_to_job(row)

    async def untold_endings(self, since: dt.datetime) -> list[Job]:
        """Failed or cancelled jobs whose user was never told (a crash right after the end)."""
        rows = await self.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN (?, ?) AND told_at IS NULL"
            " AND finished_at >= ? ORDER BY finished_at",
            (JobStatus.FAILED, JobStatus.CANCELLED, since.isoformat(timespec="milliseconds")),
        )
        return [row_to_job(r) for r in rows]

    async def unfinished_jobs(self) -> list[Job]:
        rows = await self.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE status IN (?, ?, ?) ORDER BY created_at",
            (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.DELIVERING),
        )
        return [row_to_job(r) for r in rows]

    async def recent_jobs(
        self,
        *,
        platform: str | None = None,
        workspace: str | None = None,
        user: str | None = None,
        limit: int = 20,
    ) -> list[Job]:
        clauses, params = _where(platform=platform, workspace=workspace, user=user)
        rows = await self.fetchall(
            f"SELECT {JOB_COLUMNS} FROM jobs {clauses} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [row_to_job(r) for r in rows]

    async def update_job(self, job_id: str, **fields: Any) -> None:
        """Unconditional field update (progress, surface, media path...)."""
        await self.transition(job_id, None, **fields)

    async def transition(
        self, job_id: str, expect: Iterable[JobStatus] | None, **fields: Any
    ) -> bool:
        """Set fields if the job's status is one of `expect` (any when None). True if it did."""
        async with self.transaction() as tx:
            return await update_job_in(tx, job_id, expect, **fields)


async def update_job_in(
    tx: aiosqlite.Connection, job_id: str, expect: Iterable[JobStatus] | None, **fields: Any
) -> bool:
    fields["updated_at"] = now_iso()
    assignments = ", ".join(f"{name} = ?" for name in fields)
    params: list[Any] = [_db_value(v) for v in fields.values()]
    sql = f"UPDATE jobs SET {assignments} WHERE id = ?"
    params.append(job_id)
    if expect is not None:
        states = [str(s) for s in expect]
        sql += f" AND status IN ({', '.join('?' for _ in states)})"
        params.extend(states)
    cur = await tx.execute(sql, params)
    return cur.rowcount == 1


def _db_value(value: Any) -> Any:
    if isinstance(value, Surface | VideoRequest):
        return value.model_dump_json()
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, JobStatus):
        return str(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def _where(**filters: str | None) -> tuple[str, list[str]]:
    parts = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return ("WHERE " + " AND ".join(parts) if parts else "", params)
