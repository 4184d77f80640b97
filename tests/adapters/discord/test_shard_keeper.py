"""ShardKeeper (adapters/discord/shards.py) alone, with a lease book whose database can fail
and stand-in shard sessions: what it connects and disconnects, beat by beat."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, cast

import pytest

from adapters.discord.runtime import SoraClient
from adapters.discord.shards import IdentifyPacer, ShardKeeper, lease_name, shard_of
from bot.services.leases import Lease


class Book:
    """Leases in memory; `down` makes every call raise as an unreachable database would."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, float]] = {}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("database unreachable")

    async def claim(self, name: str, owner: str, seconds: float, data: str | None = None) -> bool:
        self._check()
        now = asyncio.get_running_loop().time()
        held = self.rows.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self.rows[name] = (owner, now + seconds)
        return True

    async def renew(self, name: str, owner: str, seconds: float) -> bool:
        self._check()
        held_by, until = self.rows.get(name, ("", 0.0))
        if held_by != owner or until <= asyncio.get_running_loop().time():
            return False  # as bot/services/leases.py: a lapsed lease is not renewed
        self.rows[name] = (owner, asyncio.get_running_loop().time() + seconds)
        return True

    async def release(self, name: str, owner: str) -> bool:
        self._check()
        return self.rows.pop(name, ("", 0.0))[0] == owner

    async def holders(self, prefix: str = "") -> dict[str, Lease]:
        self._check()
        far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        return {n: Lease(n, o, far, "1") for n, (o, _) in self.rows.items() if n.startswith(prefix)}


class Session:
    """What ShardKeeper uses of a shard's SoraClient."""

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()
        self.ws: Any = None
        self.inflight: set[asyncio.Task[Any]] = set()
        self.closed = False
        self.on_ready_hook: Any = None

    async def close(self) -> None:
        self.closed = True


async def forever() -> None:
    await asyncio.Event().wait()


def keeper(book: Book, owner: str, opened: dict[int, Session], lease: float = 0.3) -> ShardKeeper:
    async def open_shard(shard_id: int, count: int) -> tuple[SoraClient, asyncio.Task[None]]:
        session = opened[shard_id] = Session()
        return cast(SoraClient, session), asyncio.create_task(forever())

    async def sync() -> None:
        return None

    return ShardKeeper(book, owner, count=2, lease_seconds=lease, open_shard=open_shard, sync=sync)


async def test_a_replica_that_cannot_renew_disconnects_before_its_lease_lapses() -> None:
    book, opened = Book(), dict[int, Session]()
    k = keeper(book, "a", opened)
    await k.tick()
    assert k.shard_ids() == [0, 1] and k.ready.is_set()
    book.down = True
    await k.tick()  # the first failed renewal: a lease still has 2 beats left, keep it
    assert k.shard_ids() == [0, 1]
    await asyncio.sleep(k.lease_seconds - k.renew_every + 0.01)
    with pytest.raises(ConnectionError):  # run() logs it and tries on the next beat
        await k.tick()  # the next beat would come after the lease lapsed: disconnect now
    assert k.shard_ids() == [] and all(s.closed for s in opened.values())
    assert not k.ready.is_set()
    book.down = False
    await k.tick()  # nobody took them meanwhile: won back and connected again
    assert k.shard_ids() == [0, 1]
    await k.stop()
    assert book.rows == {}


async def test_a_connection_that_ends_by_itself_ends_run_with_its_error() -> None:
    book: Book = Book()
    failing: dict[int, Session] = {}

    async def open_shard(shard_id: int, count: int) -> tuple[SoraClient, asyncio.Task[None]]:
        failing[shard_id] = Session()

        async def refused() -> None:
            await asyncio.sleep(0.05)
            raise PermissionError("4014: disallowed intents")

        return cast(SoraClient, failing[shard_id]), asyncio.create_task(refused())

    async def sync() -> None:
        return None

    k = ShardKeeper(book, "a", count=1, lease_seconds=30, open_shard=open_shard, sync=sync)
    await k.tick()
    try:
        async with asyncio.timeout(5):
            await k.run()
    except PermissionError as exc:
        assert "4014" in str(exc)
    else:
        raise AssertionError("run() should have ended with the shard's error")
    finally:
        await k.stop()
    assert lease_name(0) not in book.rows


async def test_identifies_of_one_bucket_are_spaced_and_guilds_map_to_shards() -> None:
    pacer = IdentifyPacer(0.2, max_concurrency=2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(pacer.wait(0), pacer.wait(1), pacer.wait(2))
    assert 0.18 <= loop.time() - start < 1.0  # shards 0 and 2 share bucket 0; 1 is alone
    assert shard_of(41771983423143937, 1) == 0
    assert {shard_of((n << 22) | 5, 4) for n in range(8)} == {0, 1, 2, 3}


async def test_a_late_renewal_keeps_the_session_when_nobody_took_the_lapsed_lease() -> None:
    book, opened = Book(), dict[int, Session]()
    k = keeper(book, "a", opened, lease=0.2)
    await k.tick()
    first = dict(opened)
    await asyncio.sleep(0.25)  # the event loop was busy: both leases lapsed, nobody claimed
    await k.tick()
    assert k.shard_ids() == [0, 1] and opened == first  # no reconnect
    assert not any(s.closed for s in first.values())
    book.rows[lease_name(1)] = ("b", asyncio.get_running_loop().time() + 60)
    await asyncio.sleep(0.25)
    await k.tick()  # shard 1 was taken meanwhile: only that one is closed
    assert k.shard_ids() == [0] and first[1].closed and not first[0].closed
    await k.stop()
