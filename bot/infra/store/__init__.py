"""The store: every SQL statement of the product lives in this package, and nowhere else.

    engine.py         the seam: `Store`, `Tx`, `Cursor`, `Row`, `open_store(url)`, `migrate`
    sqlite.py         SQLite (aiosqlite): one connection, `transaction()` = BEGIN IMMEDIATE
    postgres.py       PostgreSQL (asyncpg): a pool, `transaction()` takes the one write lock
    migrations.py     the numbered schema (and PostgreSQL's baseline for 1–8)
    job_rows.py       `jobs`                        — written only by bot.services.jobs (the job
    book)
    ledger_rows.py    `ledger`, `limits`, `audit`   — written only by bot.services.ledger (the
    money owner)
    approval_rows.py  `approvals`, `alerts`         — bot.services.approvals,
    bot.services.oversight, bot.services.alerts
    account_rows.py   `account_samples`             — EvoLink credit readings (bot.app's
    sampler; bot.services.reconcile)
    price_rows.py     `price_list`                  — bot.services.prices
    gallery_rows.py   `gallery_links`; reads of `jobs` — the web gallery (bot/gallery/archive.py),
    scoped to one workspace, never writing a job

The owners decide and call these functions with the `Tx` they opened, so that a job's change
and its ledger entry commit together. The row modules hold one SQL text per statement, with
`?` placeholders, that both engines run unchanged.
"""

from bot.infra.store.engine import Row, Store, Tx, now_iso, open_store, parse_ts

__all__ = ["Row", "Store", "Tx", "now_iso", "open_store", "parse_ts"]
