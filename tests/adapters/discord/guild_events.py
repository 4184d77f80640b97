"""The fake Discord adding the bot to a server and removing it (GUILD_CREATE / GUILD_DELETE
on the gateway session of the shard that carries the guild), as Discord sends them."""

from __future__ import annotations

from tests.adapters.discord.fake_discord import FakeDiscord


async def join(fake: FakeDiscord, name: str = "joined") -> tuple[str, str]:
    """A new guild with one text channel, and the bot joins it (after READY: discord.py
    dispatches `on_guild_join`); returns (guild_id, channel_id)."""
    guild_id, channel_id = fake.add_guild(name=name)
    # A guild joined (not one coming back from an outage) has no `unavailable` at all.
    data = {k: v for k, v in fake.guilds[guild_id].items() if k != "unavailable"}
    await fake.dispatch("GUILD_CREATE", data, guild_id=guild_id)
    return guild_id, channel_id


async def leave(fake: FakeDiscord, guild_id: str) -> None:
    """The bot is removed from the guild (kicked, or the guild deleted): `on_guild_remove`."""
    await fake.dispatch("GUILD_DELETE", {"id": guild_id}, guild_id=guild_id)
    fake.guilds.pop(guild_id, None)
