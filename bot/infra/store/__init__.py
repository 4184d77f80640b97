"""The store: every SQL statement of the product lives in this package, and nowhere else.

    connection.py     the connection, `transaction()` (BEGIN IMMEDIATE), reads, migrations
    migrations.py     the numbered schema
    job_rows.py       `jobs`                        — written only by bot.services.jobs (the job
    book)
    ledger_rows.py    `ledger`, `limits`, `audit`   — written only by bot.services.ledger (the
    money owner)
    approval_rows.py  `approvals`, `alerts`         — bot.services.approvals,
    bot.services.oversight, bot.services.alerts
    account_rows.py   `account_samples`             — EvoLink credit readings (bot.app's
    sampler; bot.services.reconcile)

The owners decide and call these functions with the `Tx` they opened, so that a job's change
and its ledger entry commit together. A second database engine is a second implementation of
these row modules and of `Store`, with the owners unchanged.
"""

from bot.infra.store.connection import Row, Store, Tx, now_iso, parse_ts

__all__ = ["Row", "Store", "Tx", "now_iso", "parse_ts"]
