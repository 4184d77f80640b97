"""The schema: numbered migrations, applied once each, in order (`engine.migrate`).

Invariants:
- A migration is never edited once released; a change is a new entry at the end.
- Migrations 1–8 are SQLite's history (AUTOINCREMENT, a column once named `user`). PostgreSQL
  never runs them: a new PostgreSQL database starts from `POSTGRES_BASELINE`
  (postgres_baseline.py), the schema SQLite has after migration 8, and records it as version
  8. tests/core/test_store_schema.py proves the two schemas equal.
- Every migration from 9 on is ONE definition run on both engines: SQL that SQLite and
  PostgreSQL both accept (integer amounts as BIGINT, no AUTOINCREMENT, no `INSERT OR …`, no
  scalar MAX/MIN, no collation names; `ALTER TABLE … ADD COLUMN` one column at a time). Text
  a new column orders by follows the PostgreSQL database's collation (README: create it
  with C collation, as the baseline's columns are).
"""

from __future__ import annotations

from bot.infra.store.postgres_baseline import POSTGRES_BASELINE, POSTGRES_BASELINE_VERSION

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
    # 5: a submit in flight (a job EvoLink may already have cannot be cancelled), and samples of
    # the EvoLink account's credits (`sora-bot admin reconcile`)
    """
    ALTER TABLE jobs ADD COLUMN submit_started_at TEXT;
    CREATE TABLE account_samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        used_mc INTEGER,
        remaining_mc INTEGER,
        unlimited INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL
    );
    CREATE INDEX account_samples_at ON account_samples(at);
    """,
    # 6: whether the requester was told an approval's decision (the deciding process may have
    # no platform: `sora-bot admin approve`); decisions before this are taken as told
    """
    ALTER TABLE approvals ADD COLUMN told_at TEXT;
    UPDATE approvals SET told_at = decided_at WHERE status != 'pending';
    CREATE INDEX approvals_untold ON approvals(status, told_at);
    """,
    # 7: EvoLink's price list, the last good copy (one row), and the version that priced a hold
    """
    CREATE TABLE price_list (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        body_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        catalog_version TEXT NOT NULL,
        pricing_version TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    ALTER TABLE jobs ADD COLUMN pricing_version TEXT;
    """,
    # 8: amounts in EvoLink's own base unit, the uc (1 credit = 10,000 uc; they were milli-credits,
    # too coarse for a price such as 21.6108), and `user` → `user_id` (a reserved word in
    # PostgreSQL). The one rewrite of ledger amounts there is: a change of unit, not of value.
    """
    ALTER TABLE jobs RENAME COLUMN user TO user_id;
    ALTER TABLE jobs RENAME COLUMN reserved_mc TO reserved_uc;
    ALTER TABLE jobs RENAME COLUMN charged_mc TO charged_uc;
    UPDATE jobs SET reserved_uc = reserved_uc * 10, charged_uc = charged_uc * 10;
    ALTER TABLE ledger RENAME COLUMN user TO user_id;
    ALTER TABLE ledger RENAME COLUMN amount_mc TO amount_uc;
    ALTER TABLE ledger RENAME COLUMN settles_mc TO settles_uc;
    UPDATE ledger SET amount_uc = amount_uc * 10, settles_uc = settles_uc * 10;
    ALTER TABLE limits RENAME COLUMN user TO user_id;
    ALTER TABLE limits RENAME COLUMN limit_mc TO limit_uc;
    UPDATE limits SET limit_uc = limit_uc * 10;
    ALTER TABLE role_limits RENAME COLUMN limit_mc TO limit_uc;
    UPDATE role_limits SET limit_uc = limit_uc * 10;
    ALTER TABLE audit RENAME COLUMN amount_mc TO amount_uc;
    UPDATE audit SET amount_uc = amount_uc * 10;
    ALTER TABLE approvals RENAME COLUMN user TO user_id;
    ALTER TABLE approvals RENAME COLUMN price_mc TO price_uc;
    UPDATE approvals SET price_uc = price_uc * 10;
    ALTER TABLE alerts RENAME COLUMN user TO user_id;
    ALTER TABLE account_samples RENAME COLUMN used_mc TO used_uc;
    ALTER TABLE account_samples RENAME COLUMN remaining_mc TO remaining_uc;
    UPDATE account_samples SET used_uc = used_uc * 10, remaining_uc = remaining_uc * 10;
    """,
    # 9: running totals of the ledger per (period, platform, workspace, user), the team's row
    # with user_id = '' — the figures admission reads instead of re-summing the period's entries.
    # Written with every entry, in its transaction; filled here from the entries there are.
    # Portable SQL (SQLite and PostgreSQL).
    """
    CREATE TABLE ledger_totals (
        period_start TEXT NOT NULL,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        user_id TEXT NOT NULL,
        granted_uc BIGINT NOT NULL DEFAULT 0,
        used_uc BIGINT NOT NULL DEFAULT 0,
        held_uc BIGINT NOT NULL DEFAULT 0,
        jobs BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (period_start, platform, workspace, user_id)
    );
    INSERT INTO ledger_totals
        (period_start, platform, workspace, user_id, granted_uc, used_uc, held_uc, jobs)
    SELECT period_start, platform, workspace, user_id,
        COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_uc END), 0),
        COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_uc END), 0),
        COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_uc END), 0)
            - COALESCE(SUM(settles_uc), 0),
        COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)
    FROM ledger GROUP BY period_start, platform, workspace, user_id;
    INSERT INTO ledger_totals
        (period_start, platform, workspace, user_id, granted_uc, used_uc, held_uc, jobs)
    SELECT period_start, platform, workspace, '',
        COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_uc END), 0),
        COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_uc END), 0),
        COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_uc END), 0)
            - COALESCE(SUM(settles_uc), 0),
        COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)
    FROM ledger GROUP BY period_start, platform, workspace;
    """,
    # 10: job leases (replicas on one database follow each open job exactly once): the
    # replica that holds the job and until when (ISO UTC); when the dispatcher released it
    # from the queue (the fair queue's round-robin memory, shared by every replica).
    # Portable SQL (SQLite and PostgreSQL).
    """
    ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
    ALTER TABLE jobs ADD COLUMN lease_until TEXT;
    ALTER TABLE jobs ADD COLUMN released_at TEXT;
    CREATE INDEX jobs_lease ON jobs(status, lease_until);
    CREATE INDEX jobs_lease_owner ON jobs(lease_owner);
    """,
    # 11: named leases (bot/services/leases.py): one holder per name until `until` (ISO UTC),
    # e.g. `discord-shard-<n>`, the replica that runs that gateway shard; `data` is the
    # holder's note (the shard count). Portable SQL (SQLite and PostgreSQL).
    """
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until TEXT NOT NULL,
        data TEXT
    );
    """,
    # 12: per-workspace settings (bot/services/workspace_settings.py): one row per (platform,
    # workspace, key) an admin set; a key with no row takes the environment's default. `value`
    # is the setting's text form; who set it and when (every change is also an audit row).
    # Portable SQL (SQLite and PostgreSQL).
    """
    CREATE TABLE workspace_settings (
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (platform, workspace, key)
    );
    """,
    # 13: Slack installations by OAuth (adapters/slack/installations.py, slack_sdk's async
    # installation and state stores over the product's store): `kind` is 'installation' (one
    # per installing user, `user_id` set) or 'bot' (the workspace's bot token, `user_id` ''),
    # keyed by enterprise and team ('' when absent); `data_json` is slack_sdk's record (its
    # tokens sealed, never plain). OAuth states are single-use until `expires_at` (ISO UTC).
    # Portable SQL (SQLite and PostgreSQL).
    """
    CREATE TABLE slack_installations (
        kind TEXT NOT NULL,
        enterprise_id TEXT NOT NULL,
        team_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        data_json TEXT NOT NULL,
        installed_at TEXT NOT NULL,
        PRIMARY KEY (kind, enterprise_id, team_id, user_id)
    );
    CREATE TABLE slack_oauth_states (
        state TEXT PRIMARY KEY,
        expires_at TEXT NOT NULL
    );
    """,
    # 14: the web gallery (bot/gallery/): a signed chat link is single-use — its id is written
    # here when it is opened (`used_at`, ISO UTC; rows older than the link's life may be
    # deleted). Portable SQL (SQLite and PostgreSQL).
    """
    CREATE TABLE gallery_links (
        link_id TEXT PRIMARY KEY,
        used_at TEXT NOT NULL
    );
    """,
)


def pending_migrations(engine: str, current: int) -> list[tuple[int, str]]:
    """(version, script) still to apply to a database of `engine` at version `current`."""
    if engine == "postgresql":
        if current == 0:
            later = list(enumerate(MIGRATIONS, start=1))[POSTGRES_BASELINE_VERSION:]
            return [(POSTGRES_BASELINE_VERSION, POSTGRES_BASELINE), *later]
        if current < POSTGRES_BASELINE_VERSION:
            raise RuntimeError(f"a PostgreSQL schema at version {current} is not one sora-bot made")
    return [(v, script) for v, script in enumerate(MIGRATIONS, start=1) if v > current]
