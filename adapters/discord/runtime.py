"""Starting and stopping the Discord side: client, command tree, persistent buttons, port.

    runtime = await start_discord(core)   # logs in, syncs commands, connects in the background
    await runtime.ready.wait()            # the gateway said READY
    await runtime.close()

Invariants:
- `DISCORD_API_BASE` moves everything: discord.py's REST root (`Route.BASE`, which the
  interaction webhooks use too) and, when it is not the default, the gateway, which is then
  the `url` that `GET {DISCORD_API_BASE}/gateway/bot` returns (the plain client would
  otherwise dial wss://gateway.discord.gg). Both are process-wide in discord.py, so there is
  one Discord client per process.
- Button handlers are registered (`add_dynamic_items`) before the gateway connects, so a
  click on a message posted before a restart is handled by the new process.
- Commands are synced to `DISCORD_GUILD_IDS` (instant) when set, else globally.
- Only the non-privileged `guilds` intent is requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import flow
from adapters.discord.commands import add_commands
from adapters.discord.port import DiscordPort
from adapters.discord.views import DYNAMIC_ITEMS
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.app import Core

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY = yarl.URL("wss://gateway.discord.gg/")
CLOSE_TIMEOUT = 10.0
DRAIN_TIMEOUT = 5.0


def point_rest_at(api_base: str) -> bool:
    """Set discord.py's REST root; True when it is not Discord's own (the gateway moves too)."""
    base = api_base.rstrip("/")
    Route.BASE = base
    custom = base != DEFAULT_API_BASE
    if not custom:
        DiscordWebSocket.DEFAULT_GATEWAY = DEFAULT_GATEWAY
    return custom


class SoraClient(discord.Client):
    def __init__(
        self, core: Core, *, custom_api: bool, progress_interval: float = 3.0, **options: Any
    ) -> None:
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.core = core
        self.custom_api = custom_api
        self.tree: app_commands.CommandTree[SoraClient] = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.interaction_check = self._track  # type: ignore[method-assign]
        self.inflight: set[asyncio.Task[Any]] = set()
        self.port = DiscordPort(self, core, progress_interval=progress_interval)
        self.ready = asyncio.Event()
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        if self.custom_api:
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
            log.info("Discord gateway: %s", yarl.URL(url).with_query(None))
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        add_commands(self.tree)
        guild_ids = self.core.settings.guild_ids
        if guild_ids:
            for guild_id in guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                self.synced += await self.tree.sync(guild=guild)
            log.info("Discord commands synced to %d guild(s)", len(guild_ids))
        else:
            self.synced = await self.tree.sync()
            log.info("Discord commands synced globally (may take a while to show up)")

    async def on_ready(self) -> None:
        log.info("Discord: connected as %s to %d guild(s)", self.user, len(self.guilds))
        self.ready.set()

    async def _track(self, interaction: discord.Interaction[Any]) -> bool:
        flow.track(interaction)
        return True

    async def _on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await flow.report_unexpected(interaction, error)


@dataclass
class DiscordRuntime:
    client: SoraClient
    task: asyncio.Task[None]

    @property
    def ready(self) -> asyncio.Event:
        return self.client.ready

    @property
    def port(self) -> DiscordPort:
        return self.client.port

    async def close(self) -> None:
        """Let handlers already running finish (bounded), then disconnect."""
        inflight = set(self.client.inflight)
        if inflight:
            await asyncio.wait(inflight, timeout=DRAIN_TIMEOUT)
        await self.client.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, CLOSE_TIMEOUT)
        point_rest_at(DEFAULT_API_BASE)  # leave discord.py's globals as we found them


async def start_discord(core: Core, **client_options: Any) -> DiscordRuntime:
    """Log in (fails fast on a bad token), sync commands, connect in the background."""
    token = core.settings.discord_token
    if token is None:
        raise ConfigError("DISCORD_TOKEN is not set.")
    client = SoraClient(
        core, custom_api=point_rest_at(core.settings.discord_api_base), **client_options
    )
    try:
        await client.login(token.get_secret_value())
    except discord.LoginFailure:
        await client.close()
        raise ConfigError(
            "DISCORD_TOKEN was refused by Discord (401): check the bot token."
        ) from None
    except BaseException:
        await client.close()
        raise
    core.register_port(client.port)
    task = asyncio.create_task(_connect(client), name="discord-gateway")
    return DiscordRuntime(client, task)


async def _connect(client: SoraClient) -> None:
    try:
        await client.connect(reconnect=True)
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the gateway intents; the bot needs no privileged intents")
        raise
    except Exception:
        log.exception("Discord gateway connection ended")
        raise
