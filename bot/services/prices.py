"""The price book: the freshest EvoLink price list the bot has, kept current.

    prices = PriceBook(store, evolink, refresh_minutes=60)
    await prices.load_saved()        # build_core: the last good copy, else the snapshot
    await prices.start()             # Core.start: read EvoLink now and every N minutes
    prices.current                   # the PriceList every quote is made from
    await prices.refresh()           # read EvoLink once (True: a new list is in use)

Sources, freshest first: EvoLink's public list (`GET /v1/catalog/pricing-rules?view=full`,
anonymous), read at start and every `PRICE_REFRESH_MINUTES`; the last good copy in the
database (`price_list`, bot/infra/store/price_rows.py); the snapshot shipped in the package
(bot/data/pricing-rules.json). Of the saved copy and the snapshot, the one whose `updated_at`
is later is used until EvoLink answers.

Invariants:
- Only a list that parses whole (bot.domain.pricing) replaces the current one, and only such
  a list is saved; a failed read (EvoLink unreachable, a malformed list) changes nothing and is
  logged as a warning — the bot keeps quoting from the list it has.
- Only the video models of a served list are kept (the others use rules the bot never
  evaluates).
- `current` is replaced as a whole, so a quote sees one list, never a mix of two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from bot.domain.errors import BotError
from bot.domain.pricing import PriceList, PricingError
from bot.infra.evolink import EvoLinkClient
from bot.infra.store import Store
from bot.infra.store import price_rows as sql

log = logging.getLogger(__name__)


def video_only(raw: dict[str, Any]) -> dict[str, Any]:
    """The served list with only its video models (what the snapshot script keeps too)."""
    models = [
        m for m in raw.get("models", []) if isinstance(m, dict) and m.get("modality") == "video"
    ]
    return {"meta": raw.get("meta") or {}, "models": models}


class PriceBook:
    """Holds the current price list and refreshes it from EvoLink."""

    def __init__(
        self,
        store: Store,
        evolink: EvoLinkClient | None,
        *,
        refresh_minutes: float = 60,
        snapshot: PriceList | None = None,
    ) -> None:
        self.store = store
        self.evolink = evolink
        self.refresh_seconds = refresh_minutes * 60
        self._current = snapshot if snapshot is not None else PriceList.load()
        #: Where `current` came from: "snapshot", "saved" or "evolink".
        self.origin = "snapshot"
        self.refreshes = 0
        self.failures = 0
        #: Set once the first read from EvoLink (in `start`'s loop) has finished, either way.
        self.first_read = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> PriceList:
        return self._current

    async def load_saved(self) -> None:
        """Use the database's last good copy when it is newer than the snapshot."""
        async with self.store.reading() as tx:
            saved = await sql.load(tx)
        if saved is None:
            return
        try:
            prices = PriceList.from_json(json.loads(saved.body_json), source="saved price list")
        except (PricingError, ValueError) as exc:
            log.warning("the saved price list does not load (%s); using the snapshot", exc)
            return
        if prices.meta.updated_at >= self._current.meta.updated_at:
            self._current = prices
            self.origin = "saved"

    async def refresh(self) -> bool:
        """Read EvoLink's list once; True when it parsed and is now `current` (without a
        client, as in the offline commands, nothing is read)."""
        if self.evolink is None:
            return False
        try:
            raw = video_only(await self.evolink.pricing_rules())
            prices = PriceList.from_json(raw, source="EvoLink price list")
        except (BotError, ValueError) as exc:
            self.failures += 1
            log.warning(
                "EvoLink's price list could not be read (%s); still quoting from %s (%s)",
                exc,
                self.origin,
                self._current.meta.pricing_version,
            )
            return False
        meta = prices.meta
        async with self.store.transaction() as tx:
            await sql.save(
                tx,
                json.dumps(raw, separators=(",", ":")),
                updated_at=meta.updated_at,
                catalog_version=meta.catalog_version,
                pricing_version=meta.pricing_version,
            )
        if meta.pricing_version != self._current.meta.pricing_version:
            log.info(
                "price list %s (catalog %s) from EvoLink replaces %s",
                meta.pricing_version,
                meta.catalog_version,
                self._current.meta.pricing_version,
            )
        self._current = prices
        self.origin = "evolink"
        self.refreshes += 1
        return True

    async def start(self) -> None:
        """Read EvoLink now and then every `refresh_minutes`, in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="price-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the price list failed")
            self.first_read.set()
            await asyncio.sleep(self.refresh_seconds)
