"""`price_list`: the last good copy of EvoLink's price list — written only by
bot.services.prices (the price book).

Invariant: one row at most (`id = 1`); a copy is saved only after it parsed whole, so what is
read back always loads; `updated_at`, `catalog_version` and `pricing_version` are the list's
own (its `meta`), `fetched_at` when the bot read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra.store.engine import Tx, now_iso, one


@dataclass(frozen=True)
class SavedPriceList:
    body_json: str
    updated_at: str
    catalog_version: str
    pricing_version: str
    fetched_at: str


async def save(
    tx: Tx, body_json: str, *, updated_at: str, catalog_version: str, pricing_version: str
) -> None:
    await tx.execute(
        "INSERT INTO price_list (id, body_json, updated_at, catalog_version, pricing_version,"
        " fetched_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " body_json = excluded.body_json, updated_at = excluded.updated_at,"
        " catalog_version = excluded.catalog_version,"
        " pricing_version = excluded.pricing_version, fetched_at = excluded.fetched_at",
        (body_json, updated_at, catalog_version, pricing_version, now_iso()),
    )


async def load(tx: Tx) -> SavedPriceList | None:
    row = await one(
        tx,
        "SELECT body_json, updated_at, catalog_version, pricing_version, fetched_at"
        " FROM price_list WHERE id = 1",
    )
    if row is None:
        return None
    return SavedPriceList(
        body_json=row["body_json"],
        updated_at=row["updated_at"],
        catalog_version=row["catalog_version"],
        pricing_version=row["pricing_version"],
        fetched_at=row["fetched_at"],
    )
