"""Discord in a deployment of replicas (adapters/discord/shards.py): two bots on one database
against one fake Discord — each gateway shard has exactly one session at the fake, a dead
holder's shard is identified by the other replica once its lease lapsed, and a job is
delivered by a replica that holds no gateway shard at all (REST only).

Both engines (`database_url`): on SQLite the two cores share one file in this process."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from adapters.discord.runtime import DiscordRuntime
from adapters.discord.shards import lease_name
from bot.infra.simulator import Simulator
from bot.infra.store import open_store
from bot.services.leases import Leases
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.adapters.discord.helpers import ALICE, eventually, is_upload, sora_options
from tests.support import RunningCore, running_core, running_simulator

LEASE = 2.4  # seconds: renewed every 0.8 s, taken over 1.6–3.2 s after the holder's death
WAIT = 15.0


@asynccontextmanager
async def replica(
    fake: FakeDiscord, sim: Simulator, folder: Path, database_url: str, **settings: Any
) -> AsyncIterator[tuple[RunningCore, DiscordRuntime]]:
    """One `sora-bot run` replica: its own folder (media), the shared database."""
    settings.setdefault("discord_guild_ids", ",".join(fake.guilds))
    factory = functools.partial(
        DiscordRuntime, guild_ready_timeout=0.05, lease_seconds=LEASE, identify_spacing=0
    )
    async with running_core(
        folder,
        sim,
        platforms=[factory],
        discord_token=FAKE_TOKEN,
        discord_api_base=fake.api_base,
        database_url=database_url,
        **settings,
    ) as rc:
        runtime = rc.platforms[0]
        assert isinstance(runtime, DiscordRuntime)
        yield rc, runtime


def command_syncs(fake: FakeDiscord) -> int:
    return len(fake.find("PUT", r"/applications/\d+(/guilds/\d+)?/commands"))


async def one_session_per_shard(fake: FakeDiscord, count: int) -> None:
    await fake.wait_gateway(lambda: all(fake.sessions(i) == 1 for i in range(count)))


async def test_two_replicas_open_exactly_one_gateway_session_per_shard(
    sim: Simulator, tmp_path: Path, database_url: str
) -> None:
    async with FakeDiscord() as fake, AsyncExitStack() as stack:
        fake.recommended_shards = 2
        guilds = [fake.add_guild(shard=(i, 2), name=f"team{i}") for i in range(2)]
        # Both replicas start at once: they race for the two shard leases.
        a, b = await asyncio.gather(
            stack.enter_async_context(replica(fake, sim, tmp_path / "a", database_url)),
            stack.enter_async_context(replica(fake, sim, tmp_path / "b", database_url)),
        )
        await one_session_per_shard(fake, 2)
        ra, rb = a[1], b[1]
        assert sorted(ra.shard_ids + rb.shard_ids) == [0, 1]  # every shard held, once
        assert sorted(fake.identifies) == [(0, 2), (1, 2)]  # one IDENTIFY each, none more
        holders = await ra.keeper.leases.holders("discord-shard-")  # type: ignore[union-attr]
        assert {name: lease.data for name, lease in holders.items()} == {
            "discord-shard-0": "2",
            "discord-shard-1": "2",
        }
        # Only shard 0's holder synced the commands (one PUT per configured guild).
        assert command_syncs(fake) == len(guilds)
        # Each guild's interaction reaches one session and is answered once.
        for guild_id, channel_id in guilds:
            record = await fake.slash(
                "sora-credits", [], user=ALICE, guild_id=guild_id, channel_id=channel_id
            )
            await fake.wait_for(lambda r, i=record.id: f"/interactions/{i}/" in r.path)
        await asyncio.sleep(0.3)  # a second answer from a second session would come now
        callbacks = fake.find("POST", r"/interactions/\d+/[^/]+/callback")
        assert len(callbacks) == 2 and all(r.status == 200 for r in callbacks)


async def test_a_dead_holders_shard_is_identified_by_the_other_replica_after_its_lease(
    sim: Simulator, tmp_path: Path, database_url: str
) -> None:
    async with FakeDiscord() as fake:
        fake.recommended_shards = 2
        fake.add_guild(shard=(0, 2))
        guild_id, channel_id = fake.add_guild(shard=(1, 2))
        async with replica(fake, sim, tmp_path / "a", database_url) as (_, ra):
            await asyncio.wait_for(ra.ready.wait(), WAIT)
            assert ra.shard_ids == [0, 1]
            async with replica(fake, sim, tmp_path / "b", database_url) as (_, rb):
                await asyncio.sleep(LEASE / 2)  # B's loop ticks; A renews: B gets nothing
                assert rb.shard_ids == [] and len(fake.identifies) == 2
                died_at = time.monotonic()
                await ra.close(release=False)  # a death: sockets gone, leases left to lapse
                await fake.wait_gateway(lambda: fake.sessions(0) == fake.sessions(1) == 0)
                await one_session_per_shard(fake, 2)
                took = time.monotonic() - died_at
                assert rb.shard_ids == [0, 1]
                assert sorted(fake.identifies) == [(0, 2), (0, 2), (1, 2), (1, 2)]
                # Not before A's leases lapsed (renewed ≤ LEASE/3 before the death), and
                # within a lease and a beat after it.
                assert LEASE * 2 / 3 - 0.1 <= took <= LEASE * 4 / 3 + 2.0, took
                await asyncio.wait_for(rb.ready.wait(), WAIT)
                record = await fake.slash(
                    "sora-credits", [], user=ALICE, guild_id=guild_id, channel_id=channel_id
                )
                answered = await fake.wait_for(lambda r: f"/interactions/{record.id}/" in r.path)
                assert answered.status == 200


async def test_a_job_asked_at_one_replica_is_delivered_by_one_without_a_gateway(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        FakeDiscord() as fake,
        running_simulator(task_seconds=2.0) as sim,
    ):
        guild_id, channel_id = fake.add_guild()
        # Replica A holds the gateway and takes the command; it stops once EvoLink has the task.
        async with replica(fake, sim, tmp_path / "a", database_url) as (_, ra):
            await asyncio.wait_for(ra.ready.wait(), WAIT)
            record = await fake.slash(
                "sora",
                sora_options("a paper boat"),
                user=ALICE,
                guild_id=guild_id,
                channel_id=channel_id,
            )
            await fake.wait_for(lambda r: f"/interactions/{record.id}/" in r.path)
            await eventually(lambda: asyncio.sleep(0, bool(sim.tasks)), within=WAIT)
        assert fake.sessions(0) == 0
        # Another replica (C, not started here) holds the only shard from now on.
        store = await open_store(database_url)
        try:
            assert await Leases(store).claim(lease_name(0), "replica-c", 60, data="1")
        finally:
            await store.close()
        identifies = len(fake.identifies)
        sent_before = len(fake.requests)
        async with replica(fake, sim, tmp_path / "b", database_url) as (_, rb):
            upload = await fake.wait_for(is_upload, within=WAIT)
            assert rb.shard_ids == [] and fake.sessions(0) == 0  # B delivered through REST
            assert len(fake.identifies) == identifies
        assert upload.path.startswith(f"/webhooks/{fake.application_id}/{record.token}")
        assert upload.files[0].data == sim.clip_of()
        video = next(m for m in fake.channel_messages(channel_id) if m.get("attachments"))
        assert video["attachments"][0]["filename"] == upload.files[0].filename
        # B also brought the status message to its final state (the interaction's original).
        edits = [
            r
            for r in fake.requests[sent_before:]
            if r.method == "PATCH" and r.path.endswith(f"/messages/{record.original_message_id}")
        ]
        assert edits
        status = fake.messages[str(record.original_message_id)]
        assert "✅ Delivered" in status["embeds"][0]["description"]


async def test_a_lost_lease_disconnects_its_shard_and_the_live_count_wins(
    sim: Simulator, tmp_path: Path, database_url: str
) -> None:
    async with FakeDiscord() as fake:
        fake.recommended_shards = 2  # DISCORD_SHARD_COUNT wins over Discord's recommendation
        fake.add_guild(shard=(0, 1))
        async with replica(fake, sim, tmp_path / "a", database_url, discord_shard_count=1) as (
            rca,
            ra,
        ):
            await asyncio.wait_for(ra.ready.wait(), WAIT)
            assert ra.shard_ids == [0] and fake.identifies == [(0, 1)]
            # B is configured for 2 shards; the running deployment has 1: B takes its count.
            async with replica(fake, sim, tmp_path / "b", database_url, discord_shard_count=2) as (
                _,
                rb,
            ):
                assert rb.keeper is not None and rb.keeper.count == 1 and rb.shard_ids == []
                # The lease changes hands behind A's back (as after a renewal too late).
                leases = Leases(rca.core.store)
                assert await leases.release(lease_name(0), ra.owner)
                assert await leases.claim(lease_name(0), "replica-c", 60, data="1")
                await fake.wait_gateway(lambda: fake.sessions(0) == 0)
                assert ra.shard_ids == [] and not ra.ready.is_set()
                await asyncio.sleep(LEASE / 2)  # a beat or more: nobody of A, B reconnects
                assert fake.identifies == [(0, 1)] and rb.shard_ids == []
