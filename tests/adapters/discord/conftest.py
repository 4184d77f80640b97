"""Fixtures: a fake Discord on 127.0.0.1:0 and the real bot (core + discord.py client) on it.

`bot_on(fake)` builds the whole thing the way `sora-bot run` does — `running_core` (real
SQLite file, EvoLink simulator, web server) with `DiscordRuntime` as its platform, pointed at
the fake by `DISCORD_API_BASE` — and waits for READY. Using it twice on the same `tmp_path`
is a restart.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.runtime import DiscordRuntime
from bot.infra.simulator import Simulator
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.support import RunningCore, running_core

WAIT = 10.0


@dataclass
class World:
    fake: FakeDiscord
    rc: RunningCore
    runtime: DiscordRuntime
    guild_id: str
    channel_id: str


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_guild()
        yield server


def first_guild(fake: FakeDiscord) -> tuple[str, str]:
    guild_id = next(iter(fake.guilds))
    return guild_id, fake.guilds[guild_id]["channels"][0]["id"]


@asynccontextmanager
async def bot_on(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator, **settings: Any
) -> AsyncIterator[World]:
    guild_id, channel_id = first_guild(fake)
    settings.setdefault("discord_guild_ids", guild_id)
    async with running_core(
        tmp_path,
        sim,
        platforms=[functools.partial(DiscordRuntime, guild_ready_timeout=0.05)],
        discord_token=FAKE_TOKEN,
        discord_api_base=fake.api_base,
        **settings,
    ) as rc:
        runtime = rc.platforms[0]
        assert isinstance(runtime, DiscordRuntime)
        await asyncio.wait_for(runtime.ready.wait(), WAIT)
        yield World(fake, rc, runtime, guild_id, channel_id)


@pytest.fixture
async def world(fake: FakeDiscord, tmp_path: Path, sim: Simulator) -> AsyncIterator[World]:
    async with bot_on(fake, tmp_path, sim) as w:
        yield w
