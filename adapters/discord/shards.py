"""The Discord gateway shards this replica runs: each one held by lease, so that across every
replica on the database each shard has exactly one gateway session.

    keeper = ShardKeeper(leases, owner, count=N, lease_seconds=30, open_shard=..., sync=...)
    count = await keeper.agree_count(N)   # the count live leases carry wins over ours
    await keeper.tick()                   # renew what we hold, drop what we lost, take the free
    keeper.task = asyncio.create_task(keeper.run())   # tick every lease/3 seconds
    await keeper.stop(release=True)       # a clean stop frees the leases at once

A shard is the lease `discord-shard-<i>` (bot/services/leases.py); its gateway session is one
`SoraClient` with `shard_id=i, shard_count=N` (adapters/discord/runtime.py), opened when the
lease is won and closed when it is given up or lost. One client per shard rather than one
`AutoShardedClient`: the set a replica holds changes while it runs (a dead replica's shard
taken over, a lease lost), and an AutoShardedClient fixes its shard ids at launch, so every
change would close and re-IDENTIFY every shard the replica holds.

Invariants:
- A shard's gateway is connected only while this replica holds its lease: it is opened after
  the claim succeeded and closed as soon as a renewal says the lease is someone else's, or
  when renewals failed (the database unreachable) so long that the lease may lapse before the
  next try — so the next holder is alone on that shard.
- Leases are renewed every third of `lease_seconds` (a renewal that came too late keeps the
  shard only if nobody took the lapsed lease meanwhile); free or expired shards are claimed on
  the same beat, so a dead replica's shard is connected elsewhere within about
  `lease_seconds * 4/3` of its last renewal.
- Stopping a shard closes its gateway first (no new interactions arrive), releases its lease
  when the stop is clean, then lets its running handlers finish (bounded) before its HTTP
  session closes.
- The deployment has one shard count: a replica whose own count differs from the one the
  live leases carry (`data`) adopts theirs and says so; a new count takes effect when every
  replica has stopped.
- Slash commands are synced by the replica that wins shard 0, once per process.
- A shard whose connection ends by itself (a refused token or intents) ends `run()` with that
  error, which stops the process like the single connection did.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.discord.runtime import SoraClient
    from bot.services.interface import LeaseKeeper

log = logging.getLogger(__name__)

LEASE_PREFIX = "discord-shard-"
DRAIN_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0


def lease_name(shard_id: int) -> str:
    return f"{LEASE_PREFIX}{shard_id}"


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events on (`(guild_id >> 22) % num_shards`)."""
    return (guild_id >> 22) % shard_count


class IdentifyPacer:
    """At most one IDENTIFY per `spacing` seconds per rate-limit bucket
    (`shard_id % max_concurrency`) among this process's shard clients."""

    def __init__(self, spacing: float, max_concurrency: int = 1) -> None:
        self.spacing = spacing
        self.max_concurrency = max(1, max_concurrency)
        self._locks: dict[int, asyncio.Lock] = {}
        self._last: dict[int, float] = {}

    async def wait(self, shard_id: int) -> None:
        bucket = shard_id % self.max_concurrency
        async with self._locks.setdefault(bucket, asyncio.Lock()):
            loop = asyncio.get_running_loop()
            last = self._last.get(bucket)
            if last is not None:
                await asyncio.sleep(max(0.0, last + self.spacing - loop.time()))
            self._last[bucket] = loop.time()


@dataclass
class Held:
    """A shard this replica holds: its client, its connection, when its lease lapses."""

    client: SoraClient
    task: asyncio.Task[None]
    expires: float  # loop time by which the lease lapses unless renewed
    stopping: bool = field(default=False)


class ShardKeeper:
    def __init__(
        self,
        leases: LeaseKeeper,
        owner: str,
        *,
        count: int,
        lease_seconds: float,
        open_shard: Callable[[int, int], Awaitable[tuple[SoraClient, asyncio.Task[None]]]],
        sync: Callable[[], Awaitable[None]],
    ) -> None:
        self.leases = leases
        self.owner = owner
        self.count = count
        self.lease_seconds = lease_seconds
        self.open_shard = open_shard
        self.sync = sync
        self.held: dict[int, Held] = {}
        self.ready = asyncio.Event()
        self.synced = False
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None

    @property
    def renew_every(self) -> float:
        return self.lease_seconds / 3

    def shard_ids(self) -> list[int]:
        return sorted(self.held)

    async def agree_count(self, mine: int) -> int:
        """The deployment's shard count: the one live shard leases carry, else `mine`."""
        theirs = {
            lease.data
            for lease in (await self.leases.holders(LEASE_PREFIX)).values()
            if lease.data and lease.data.isdigit() and lease.owner != self.owner
        }
        if theirs:
            count = int(max(theirs))
            if len(theirs) > 1 or count != mine:
                log.warning(
                    "Discord: the replicas running now use %s gateway shard(s) (this one would "
                    "use %d); using %d until every replica has stopped",
                    "/".join(sorted(theirs)),
                    mine,
                    count,
                )
            self.count = count
        else:
            self.count = mine
        return self.count

    async def tick(self, *, strict: bool = False) -> None:
        """Renew the shards held, close the ones lost, claim and open the free ones.
        `strict` (the first round, in `start()`): a failed command sync raises."""
        loop = asyncio.get_running_loop()
        for shard_id, held in list(self.held.items()):
            name = lease_name(shard_id)
            try:
                mine = await self.leases.renew(name, self.owner, self.lease_seconds)
                if not mine:  # late: it lapsed; still ours if nobody took it meanwhile
                    mine = await self.leases.claim(
                        name, self.owner, self.lease_seconds, data=str(self.count)
                    )
            except Exception as exc:  # the database: try again next beat while there is time
                if loop.time() + self.renew_every >= held.expires:
                    log.warning(
                        "Discord shard %d: lease not renewed (%s); disconnecting before it lapses",
                        shard_id,
                        type(exc).__name__,
                    )
                    await self.stop_shard(shard_id, release=False)
                continue
            if mine:
                held.expires = loop.time() + self.lease_seconds
            else:
                log.warning(
                    "Discord shard %d: lease taken by another replica; disconnecting", shard_id
                )
                await self.stop_shard(shard_id, release=False)
        for shard_id in range(self.count):
            if shard_id in self.held:
                continue
            won = await self.leases.claim(
                lease_name(shard_id), self.owner, self.lease_seconds, data=str(self.count)
            )
            if won:
                await self._open(shard_id, expires=loop.time() + self.lease_seconds, strict=strict)

    async def _open(self, shard_id: int, *, expires: float, strict: bool) -> None:
        try:
            if shard_id == 0 and not self.synced:
                await self._sync(strict=strict)
            client, task = await self.open_shard(shard_id, self.count)
        except BaseException:
            with contextlib.suppress(Exception):  # not connected: let another replica try
                await self.leases.release(lease_name(shard_id), self.owner)
            raise
        self.held[shard_id] = Held(client, task, expires)
        client.on_ready_hook = self.refresh_ready
        task.add_done_callback(functools.partial(self._ended, shard_id))
        self.refresh_ready()
        log.info("Discord shard %d/%d: lease won, connecting", shard_id, self.count)

    async def _sync(self, *, strict: bool) -> None:
        """The slash commands, once per process, by shard 0's holder. At start a failure is
        the start's (a one-line ConfigError); on a takeover it is logged, the shard connects."""
        self.synced = True
        try:
            await self.sync()
        except Exception:
            if strict:
                raise
            log.exception("Discord commands not synced after taking shard 0 over")

    def _ended(self, shard_id: int, task: asyncio.Task[None]) -> None:
        held = self.held.get(shard_id)
        if held is None or held.stopping or task.cancelled():
            return
        self._failure = task.exception() or RuntimeError(
            f"Discord shard {shard_id}: the gateway connection ended"
        )
        self._wake.set()

    def refresh_ready(self) -> None:
        """`ready`: this replica holds a shard and every shard it holds said READY."""
        if self.held and all(h.client.ready.is_set() for h in self.held.values()):
            self.ready.set()
        else:
            self.ready.clear()

    async def run(self) -> None:
        """Tick every `renew_every` seconds until cancelled or a shard's connection died."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.renew_every):
                    await self._wake.wait()
            self._wake.clear()
            if self._failure is not None:
                raise self._failure
            try:
                await self.tick()
            except Exception:
                log.exception("Discord shard leases: this round failed; trying again")

    async def stop_shard(self, shard_id: int, *, release: bool) -> None:
        held = self.held.get(shard_id)
        if held is None:
            return
        held.stopping = True
        held.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            async with asyncio.timeout(STOP_TIMEOUT):
                await held.task
        ws = held.client.ws
        if ws is not None and ws.open:
            with contextlib.suppress(Exception):
                await ws.close(code=1000)  # a session nobody resumes: the next holder IDENTIFYs
        if release:
            try:
                await self.leases.release(lease_name(shard_id), self.owner)
            except Exception as exc:
                log.warning("Discord shard %d: lease not released (%s)", shard_id, exc)
        inflight = set(held.client.inflight)
        if inflight:
            await asyncio.wait(inflight, timeout=DRAIN_TIMEOUT)
        with contextlib.suppress(Exception):
            await held.client.close()
        self.held.pop(shard_id, None)
        self.refresh_ready()
        log.info("Discord shard %d/%d: disconnected", shard_id, self.count)

    async def stop(self, *, release: bool = True) -> None:
        """Close every shard held (at once); `release=False` leaves the leases to lapse."""
        await asyncio.gather(*(self.stop_shard(i, release=release) for i in list(self.held)))
