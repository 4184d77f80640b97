"""Starting and stopping the Discord side: clients, command tree, persistent buttons, port.

    runtime = DiscordRuntime(host)   # a PlatformFactory (bot/services/interface.py): builds, no I/O
    await runtime.start()            # logs in, claims shards, syncs commands, connects them
    await runtime.ready.wait()       # every shard this replica holds said READY
    await runtime.close()

A deployment may run several replicas on one database; Discord allows one gateway session per
shard. So every replica logs in (REST: the port posts, edits and reads through `self.client`,
which never connects), and each gateway shard is held by exactly one replica, by lease
(adapters/discord/shards.py), as its own `SoraClient(shard_id=i, shard_count=N)`. The shard
count is DISCORD_SHARD_COUNT, else Discord's recommendation (`GET /gateway/bot`; 1 when it
cannot be read). With SQLite (one process) that process holds every shard.

Invariants:
- `DISCORD_API_BASE` moves everything: discord.py's REST root (`Route.BASE`, which the
  interaction webhooks use too) and, when it is not the default, the gateway, which is then
  the `url` that `GET {DISCORD_API_BASE}/gateway/bot` returns (the plain client would
  otherwise dial wss://gateway.discord.gg). Both are process-wide in discord.py, so one
  process talks to one Discord.
- The port needs no gateway: every delivery, status edit, notice and admin message goes by
  channel/message id (`PartialMessageable`), DM channel (`POST /users/@me/channels`) or the
  interaction's webhook token, so a job may be followed by a replica that holds no shard.
- Button handlers are registered (`add_dynamic_items`) before a shard connects, so a click
  on a message posted before a restart is handled by the new holder.
- Commands are synced to `DISCORD_GUILD_IDS` (instant) when set, else globally, by the
  replica that wins shard 0 (once per process), not by every replica on every start.
- The bot joining a server syncs the commands there when they are synced per guild; the bot
  leaving one cancels that server's queued jobs (adapters/discord/guilds.py).
- Only the non-privileged `guilds` intent is requested. The bot has no voice: discord.py's
  "PyNaCl / davey is not installed, voice will NOT be supported" warnings are switched off at
  their source (`VoiceClient.warn_nacl` / `warn_dave`) before a client is built.
- `start()` fails in one line (`ConfigError`), never a traceback: a refused token (401), a
  Discord that cannot be reached (no network, DNS, a closed DISCORD_API_BASE), or an HTTP
  error while logging in or syncing the commands; the leases it had won are released.
- Acknowledgement latency (`sora_ack_latency_seconds{platform="discord"}`) runs from the
  INTERACTION_CREATE gateway event being parsed to the interaction callback (defer, message
  or modal) being answered by Discord; it is observed through an aiohttp trace on each
  client's own HTTP session, so every handler is covered without touching any of them.
  Autocomplete is not an acknowledgement and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import flow, guilds
from adapters.discord.acks import AckTimer
from adapters.discord.commands import add_commands
from adapters.discord.port import DiscordPort
from adapters.discord.shards import IdentifyPacer, ShardKeeper
from adapters.discord.views import DYNAMIC_ITEMS
from bot.domain.errors import ConfigError
from bot.services.interface import AckObserver, PlatformHost

if TYPE_CHECKING:
    from bot.services.interface import BotService

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY = yarl.URL("wss://gateway.discord.gg/")
CLOSE_TIMEOUT = 10.0
DRAIN_TIMEOUT = 5.0
DEFAULT_LEASE_SECONDS = 30.0  # LEASE_SECONDS' default, when Settings has none
IDENTIFY_SPACING = 5.0  # Discord: one IDENTIFY per 5 s per max_concurrency bucket


#: Runtimes not closed yet (tests run two replicas in one process: the first to close must
#: not point the other one's REST at discord.com).
_OPEN_RUNTIMES: set[int] = set()


def point_rest_at(api_base: str) -> bool:
    """Set discord.py's REST root; True when it is not Discord's own (the gateway moves too)."""
    base = api_base.rstrip("/")
    Route.BASE = base
    custom = base != DEFAULT_API_BASE
    if not custom:
        DiscordWebSocket.DEFAULT_GATEWAY = DEFAULT_GATEWAY
    return custom


class SoraClient(discord.Client):
    """One discord.py client: the runtime's REST client (logged in, never connected: the port
    posts through it) or one gateway shard's session (`shard_id`, `shard_count`, sharing the
    REST client's `port`)."""

    def __init__(
        self,
        service: BotService,
        acks: AckObserver,
        *,
        custom_api: bool,
        progress_interval: float = 3.0,
        port: DiscordPort | None = None,
        pacer: IdentifyPacer | None = None,
        **options: Any,
    ) -> None:
        self.ack_timer = AckTimer(acks)
        options.setdefault("http_trace", self.ack_timer.trace)
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.ack_timer.wrap_parser(self._connection)
        self.service = service
        self.custom_api = custom_api
        self.pacer = pacer
        self.tree: app_commands.CommandTree[SoraClient] = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.interaction_check = self._track  # type: ignore[method-assign]
        self.inflight: set[asyncio.Task[Any]] = set()
        self.port = port or DiscordPort(self, service, progress_interval=progress_interval)
        self.ready = asyncio.Event()
        self.on_ready_hook: Callable[[], None] | None = None
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        add_commands(self.tree)

    async def read_gateway(self) -> tuple[int, int]:
        """`GET /gateway/bot`: Discord's recommended shard count and max_concurrency; with a
        custom DISCORD_API_BASE the gateway address too (it is required there)."""
        try:
            shards, url, limit = await self.http.get_bot_gateway()
        except discord.GatewayNotFound:
            if self.custom_api:
                raise
            log.warning("Discord's GET /gateway/bot could not be read: using 1 shard")
            return 1, 1
        if self.custom_api:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
            log.info("Discord gateway: %s", yarl.URL(url).with_query(None))
        concurrency = limit.get("max_concurrency", 1) if isinstance(limit, dict) else 1
        return max(1, int(shards or 1)), max(1, int(concurrency or 1))

    async def sync_commands(self) -> None:
        guild_ids = self.service.settings.guild_ids
        if guild_ids:
            for guild_id in guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                self.synced += await self.tree.sync(guild=guild)
            log.info("Discord commands synced to %d guild(s)", len(guild_ids))
        else:
            self.synced = await self.tree.sync()
            log.info("Discord commands synced globally (may take a while to show up)")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if self.pacer is None:
            await super().before_identify_hook(shard_id, initial=initial)
        else:
            await self.pacer.wait(shard_id or 0)

    async def on_ready(self) -> None:
        log.info(
            "Discord: connected as %s to %d guild(s) (shard %s/%s)",
            self.user,
            len(self.guilds),
            self.shard_id,
            self.shard_count,
        )
        self.ready.set()
        if self.on_ready_hook is not None:
            self.on_ready_hook()

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await guilds.joined(self.service, self.tree, guild)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await guilds.removed(self.service, guild)

    async def _track(self, interaction: discord.Interaction[Any]) -> bool:
        flow.track(interaction)
        return True

    async def _on_tree_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        await flow.report_unexpected(interaction, error)


class DiscordRuntime:
    """Discord as a `PlatformRuntime`; `client_options` go to discord.py's clients.

    `lease_seconds` overrides LEASE_SECONDS for the shard leases (tests);
    `identify_spacing` is the pause between two IDENTIFYs of one rate-limit bucket."""

    serves_http = False

    def __init__(
        self,
        host: PlatformHost,
        *,
        lease_seconds: float | None = None,
        identify_spacing: float = IDENTIFY_SPACING,
        **client_options: Any,
    ) -> None:
        settings = host.service.settings
        if settings.discord_token is None:
            raise ConfigError("DISCORD_TOKEN is not set.")
        self._token = settings.discord_token.get_secret_value()
        self._api_base = settings.discord_api_base
        self._host = host
        self._options = client_options
        self._identify_spacing = identify_spacing
        self.lease_seconds = float(
            lease_seconds or getattr(settings, "lease_seconds", None) or DEFAULT_LEASE_SECONDS
        )
        replica = getattr(settings, "replica_id", None) or socket.gethostname() or "replica"
        # Unique per running runtime: two processes given one REPLICA_ID never share a shard.
        self.owner = f"{replica}/{secrets.token_hex(2)}"
        # No voice here: discord.py would otherwise warn about voice libraries on every start.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        self._custom_api = point_rest_at(settings.discord_api_base)
        _OPEN_RUNTIMES.add(id(self))
        self.client = SoraClient(
            host.service, host.acks, custom_api=self._custom_api, **client_options
        )
        self.keeper: ShardKeeper | None = None
        self.task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def ready(self) -> asyncio.Event:
        """Every gateway shard this replica holds said READY (never, holding none)."""
        return self.keeper.ready if self.keeper is not None else self._ready

    @property
    def port(self) -> DiscordPort:
        return self.client.port

    @property
    def connection(self) -> asyncio.Task[None] | None:
        return self.task

    @property
    def shard_ids(self) -> list[int]:
        """The gateway shards this replica holds now."""
        return self.keeper.shard_ids() if self.keeper is not None else []

    async def start(self) -> None:
        """Log in (fails fast on a bad token), claim the free shards, sync the commands when
        shard 0 is ours, connect the shards held in the background."""
        try:
            await self.client.login(self._token)
            recommended, concurrency = await self.client.read_gateway()
            configured = self._host.service.settings.discord_shard_count
            pacer = IdentifyPacer(self._identify_spacing, concurrency)
            self.keeper = ShardKeeper(
                self._host.leases,
                self.owner,
                count=configured or recommended,
                lease_seconds=self.lease_seconds,
                open_shard=functools.partial(self._open_shard, pacer),
                sync=self.client.sync_commands,
            )
            count = await self.keeper.agree_count(configured or recommended)
            await self.keeper.tick(strict=True)
            self.client.port.admin.guild_lookup = self._find_guild
            log.info(
                "Discord: %d gateway shard(s) in the deployment; this replica (%s) holds %s",
                count,
                self.owner,
                self.keeper.shard_ids() or "none (it posts through REST)",
            )
        except BaseException as exc:
            await self._abandon_start()
            error = _start_error(exc, self._api_base)
            if error is exc:
                raise
            raise error from None
        self.task = asyncio.create_task(self.keeper.run(), name="discord-shards")

    async def _abandon_start(self) -> None:
        if self.keeper is not None:
            with contextlib.suppress(Exception):
                await self.keeper.stop(release=True)
        await self.client.close()

    async def _open_shard(
        self, pacer: IdentifyPacer, shard_id: int, count: int
    ) -> tuple[SoraClient, asyncio.Task[None]]:
        client = SoraClient(
            self._host.service,
            self._host.acks,
            custom_api=self._custom_api,
            port=self.client.port,
            pacer=pacer,
            shard_id=shard_id,
            shard_count=count,
            **self._options,
        )
        try:
            await client.login(self._token)
        except BaseException:
            await client.close()
            raise
        return client, asyncio.create_task(_connect(client), name=f"discord-shard-{shard_id}")

    def _find_guild(self, guild_id: int) -> discord.Guild | None:
        """A guild from the cache of the shard that carries it (None: another replica's)."""
        for held in (self.keeper.held if self.keeper is not None else {}).values():
            guild = held.client.get_guild(guild_id)
            if guild is not None:
                return guild
        return None

    async def close(self, *, release: bool = True) -> None:
        """Close the gateway shards (their running handlers finish, bounded), give their
        leases up, close the REST client. `release=False` leaves the leases to lapse, as a
        replica that died would (tests)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.task
        if self.keeper is not None:
            await self.keeper.stop(release=release)
        inflight = set(self.client.inflight)
        if inflight:
            await asyncio.wait(inflight, timeout=DRAIN_TIMEOUT)
        await self.client.close()
        _OPEN_RUNTIMES.discard(id(self))
        if not _OPEN_RUNTIMES:  # the last one leaves discord.py's globals as it found them
            point_rest_at(DEFAULT_API_BASE)


def _start_error(exc: BaseException, api_base: str) -> BaseException:
    """What `start()` raises for `exc`: a one-line ConfigError where the cause is known."""
    if isinstance(exc, discord.LoginFailure):
        return ConfigError("DISCORD_TOKEN was refused by Discord (401): check the bot token.")
    if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
        return ConfigError(
            f"Discord could not be reached at {api_base} ({type(exc).__name__}): "
            "check the network (or DISCORD_API_BASE)."
        )
    if isinstance(exc, discord.HTTPException):
        return ConfigError(
            f"Discord answered {exc.status} while the bot logged in and synced its "
            f"commands ({exc.text or 'no detail'})."
        )
    if isinstance(exc, discord.GatewayNotFound):
        return ConfigError(
            f"Discord's gateway address could not be read at {api_base}/gateway/bot."
        )
    return exc


async def _connect(client: SoraClient) -> None:
    try:
        await client.connect(reconnect=True)
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the gateway intents; the bot needs no privileged intents")
        raise
    except Exception:
        log.exception("Discord gateway connection ended (shard %s)", client.shard_id)
        raise
