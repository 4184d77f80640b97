"""The live price list: read from EvoLink (the simulator) at start and on refresh, kept in the
database, used for the next quote without a restart; a retired model is refused with the
alternatives; EvoLink unreachable keeps the last good copy, else the shipped snapshot."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.domain.errors import InputError
from bot.domain.models import Surface
from bot.domain.offer import held_credits
from bot.domain.pricing import PriceList
from bot.infra.evolink import EvoLinkClient
from bot.infra.simulator import Simulator
from bot.services.prices import PriceBook
from tests.conftest import ALICE
from tests.support import RecordingPort, RunningCore, running_core


def _submits(sim: Simulator) -> list[object]:
    return [r for r in sim.requests if r.kind == "submit"]


async def test_the_bot_reads_the_price_list_at_start(rc: RunningCore, sim: Simulator) -> None:
    read = await sim.wait_for_request(lambda r: r.kind == "pricing")
    assert read.path == "/v1/catalog/pricing-rules" and read.query == {"view": "full"}
    prices = rc.core.prices
    await asyncio.wait_for(prices.first_read.wait(), 10)  # answered, parsed and saved
    assert prices.origin == "evolink" and prices.refreshes == 1
    saved = await rc.core.store.fetchone("SELECT pricing_version, catalog_version FROM price_list")
    assert saved is not None and saved[0] == prices.current.meta.pricing_version
    assert saved[1] == prices.current.meta.catalog_version


async def test_a_changed_price_changes_the_next_quote_without_a_restart(
    rc: RunningCore, sim: Simulator, port: RecordingPort
) -> None:
    service = rc.core.service
    request = service.parse("a lighthouse")
    model = request.model
    before = service.price(request)
    sim.config.price_factors[model] = Decimal(2)
    assert await rc.core.prices.refresh()
    after = service.price(request)
    assert after.pricing_version != before.pricing_version
    assert after.exact == before.exact * 2  # every rate and minimum doubled
    assert after.credits == held_credits(after.exact)
    job = await service.submit(ALICE, request, Surface())
    assert job.reserved == after.credits
    assert job.pricing_version == after.pricing_version  # the job row names its price list
    delivered = await port.wait_for(job.id, "delivered")
    assert delivered.job.charge == after.credits  # the simulator billed by the same rules


async def test_a_retired_model_is_refused_with_the_alternatives_and_nothing_is_held(
    rc: RunningCore, sim: Simulator
) -> None:
    service = rc.core.service
    request = service.parse("a lighthouse")
    sim.config.retired[request.model] = "retired"
    assert await rc.core.prices.refresh()
    with pytest.raises(InputError) as refused:
        await service.submit(ALICE, request, Surface())
    message = str(refused.value)
    assert request.model in message and "Available models:" in message
    alternatives = service.orderable_models()
    assert request.model not in alternatives and alternatives
    assert set(refused.value.valid) == set(alternatives)
    assert all(name in message for name in alternatives)
    assert (await service.balance(ALICE)).held == 0
    assert await rc.core.book.recent_jobs() == [] and _submits(sim) == []
    # And back on offer: the next refresh makes it orderable again.
    del sim.config.retired[request.model]
    assert await rc.core.prices.refresh()
    assert request.model in service.orderable_models()


async def test_evolink_unreachable_keeps_the_last_good_copy_then_the_snapshot(
    tmp_path: Path, sim: Simulator
) -> None:
    snapshot = PriceList.load()
    sim.config.price_factors["*"] = Decimal(3)
    async with running_core(tmp_path, sim) as rc:
        assert await rc.core.prices.refresh()
        live = rc.core.prices.current.meta.pricing_version
        assert live != snapshot.meta.pricing_version
        sim.config.http_errors["pricing"] = [503] * 20
        assert not await rc.core.prices.refresh()  # a failed read changes nothing
        assert rc.core.prices.current.meta.pricing_version == live
    # A new process on the same database while EvoLink cannot be reached: the saved copy.
    dead = EvoLinkClient("http://127.0.0.1:9", "k", max_attempts=1)
    async with running_core(tmp_path, sim, evolink=dead) as rc:
        assert rc.core.prices.origin == "saved"
        assert rc.core.prices.current.meta.pricing_version == live
        assert not await rc.core.prices.refresh()
        assert rc.core.prices.current.meta.pricing_version == live
    await dead.aclose()
    # A fresh database and no EvoLink: the shipped snapshot.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    dead = EvoLinkClient("http://127.0.0.1:9", "k", max_attempts=1)
    async with running_core(fresh, sim, evolink=dead) as rc:
        assert not await rc.core.prices.refresh()
        assert rc.core.prices.origin == "snapshot"
        assert rc.core.prices.current.meta == snapshot.meta
        assert rc.core.service.quote(rc.core.service.parse("a cat")) > 0
    await dead.aclose()


class _Serving:
    """A stand-in EvoLink that serves one fixed price list."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    async def pricing_rules(self) -> dict[str, Any]:
        return self.body


async def test_a_list_the_calculator_cannot_read_is_refused_whole(rc: RunningCore) -> None:
    bad_model = {
        "model_id": "x-video",
        "modality": "video",
        "components": [{"id": "c", "quantity_rule": {"op": "frobnicate"}}],
    }
    good = PriceList.load()
    book = PriceBook(rc.core.store, _Serving({"meta": {}, "models": [bad_model]}), snapshot=good)  # type: ignore[arg-type]
    assert not await book.refresh()
    assert book.current is good and book.failures == 1
    saved = await rc.core.store.fetchone("SELECT pricing_version FROM price_list")
    assert saved is None or saved[0] == good.meta.pricing_version  # never the bad list
