"""The bot joining or leaving a Discord server (`on_guild_join`, `on_guild_remove`).

Invariants:
- Joining: when the deployment syncs its commands per guild (DISCORD_GUILD_IDS set), the
  joined guild gets them at once (`copy_global_to` + `sync(guild=…)`), listed or not — without
  it the new server would have no `/sora` until an operator edits the list and restarts. With
  global sync (no DISCORD_GUILD_IDS) Discord shows the global commands in every guild by
  itself: nothing is synced. A failed sync is logged (a warning), never raised: the gateway
  session goes on.
- Leaving (kicked, banned, the server deleted — not an outage: discord.py calls
  `on_guild_unavailable` for those): `BotService.workspace_removed("discord", guild id, …)`
  cancels that server's queued jobs and releases their credits; the core decides what is
  cancelled and keeps the ledger. Only the gateway session carrying the guild gets the event,
  so one replica calls it; the call is idempotent anyway.
- Nothing here is a rule about credits or jobs: this module reports the fact and logs it.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord.surface import PLATFORM
from bot.domain.errors import BotError
from bot.services.interface import BotService

log = logging.getLogger(__name__)

REMOVED_REASON = "the bot was removed from the Discord server"


async def joined(
    service: BotService, tree: app_commands.CommandTree[Any], guild: discord.Guild
) -> bool:
    """Sync the commands to `guild` when guild sync is used; True when they were synced."""
    if not service.settings.guild_ids:
        log.info("Discord: joined guild %s (commands are global: nothing to sync)", guild.id)
        return False
    target = discord.Object(id=guild.id)
    tree.copy_global_to(guild=target)
    try:
        synced = await tree.sync(guild=target)
    except discord.HTTPException as exc:
        log.warning(
            "Discord: joined guild %s but its command sync failed (%s %s)",
            guild.id,
            exc.status,
            exc.text or "no detail",
        )
        return False
    log.info("Discord: joined guild %s; %d command(s) synced there", guild.id, len(synced))
    return True


async def removed(service: BotService, guild: discord.Guild) -> int:
    """Tell the core the bot left `guild`; how many queued jobs it cancelled."""
    try:
        cancelled = await service.workspace_removed(PLATFORM, str(guild.id), REMOVED_REASON)
    except BotError as exc:
        log.warning("Discord: left guild %s; its jobs could not be cancelled (%s)", guild.id, exc)
        return 0
    log.info("Discord: left guild %s; %d queued job(s) cancelled", guild.id, cancelled)
    return cancelled
