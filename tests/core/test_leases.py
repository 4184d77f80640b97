"""Named leases (bot/services/leases.py) on both engines: one holder per name, taken over only
after it expires, released at a clean stop; two stores on one database race for a name and
exactly one wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.infra.store import Store, open_store
from bot.services.leases import Leases


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.close()


async def test_a_free_lease_is_claimed_and_held_against_others(store: Store) -> None:
    leases = Leases(store)
    assert await leases.claim("discord-shard-0", "a", 30, data="2")
    assert not await leases.claim("discord-shard-0", "b", 30)
    assert await leases.claim("discord-shard-0", "a", 30, data="2")  # already mine: extended
    held = await leases.holders("discord-shard-")
    assert list(held) == ["discord-shard-0"]
    assert held["discord-shard-0"].owner == "a" and held["discord-shard-0"].data == "2"


async def test_renew_keeps_only_a_lease_still_mine(store: Store) -> None:
    leases = Leases(store)
    assert await leases.claim("job-x", "a", 30)
    assert await leases.renew("job-x", "a", 30)
    assert not await leases.renew("job-x", "b", 30)
    assert not await leases.renew("never-claimed", "a", 30)


async def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew(
    store: Store,
) -> None:
    leases = Leases(store)
    assert await leases.claim("discord-shard-1", "a", 0.2)
    assert not await leases.claim("discord-shard-1", "b", 30)
    await asyncio.sleep(0.3)  # the lease's own time running out is what is tested
    assert await leases.holders("discord-shard-") == {}
    assert await leases.claim("discord-shard-1", "b", 30)
    assert not await leases.renew("discord-shard-1", "a", 30)
    assert (await leases.holders())["discord-shard-1"].owner == "b"


async def test_release_frees_at_once_and_only_for_the_holder(store: Store) -> None:
    leases = Leases(store)
    assert await leases.claim("discord-shard-0", "a", 30)
    assert not await leases.release("discord-shard-0", "b")
    assert not await leases.claim("discord-shard-0", "b", 30)
    assert await leases.release("discord-shard-0", "a")
    assert await leases.claim("discord-shard-0", "b", 30)


async def test_holders_filters_by_prefix(store: Store) -> None:
    leases = Leases(store)
    for name in ("discord-shard-0", "discord-shard-1", "slack-socket"):
        assert await leases.claim(name, "a", 30)
    assert sorted(await leases.holders("discord-shard-")) == ["discord-shard-0", "discord-shard-1"]
    assert len(await leases.holders()) == 3


async def test_a_non_positive_lease_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="positive"):
        await Leases(store).claim("x", "a", 0)
    assert await Leases(store).holders() == {}


async def test_two_stores_on_one_database_claiming_together_get_one_holder(
    database_url: str,
) -> None:
    first, second = await open_store(database_url), await open_store(database_url)
    try:
        owners = [f"replica-{i}" for i in range(8)]
        stores = [first, second] * 4
        won = await asyncio.gather(
            *(
                Leases(s).claim("discord-shard-0", o, 30)
                for s, o in zip(stores, owners, strict=True)
            )
        )
        assert sum(won) == 1
        holder = (await Leases(first).holders())["discord-shard-0"].owner
        assert holder == owners[won.index(True)]
    finally:
        await first.close()
        await second.close()
