"""Starting and stopping the Discord side: client, command tree, persistent buttons, port.

    runtime = DiscordRuntime(host)   # a PlatformFactory (bot/services/interface.py): builds, no I/O
    await runtime.start()            # logs in, syncs commands, connects in the background
    await runtime.ready.wait()       # the gateway said READY
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
- Only the non-privileged `guilds` intent is requested. The bot has no voice: discord.py's
  "PyNaCl / davey is not installed, voice will NOT be supported" warnings are switched off at
  their source (`VoiceClient.warn_nacl` / `warn_dave`) before the client is built.
- `start()` fails in one line (`ConfigError`), never a traceback: a refused token (401), a
  Discord that cannot be reached (no network, DNS, a closed DISCORD_API_BASE), or an HTTP
  error while logging in or syncing the commands.
- Acknowledgement latency (`sora_ack_latency_seconds{platform="discord"}`) runs from the
  INTERACTION_CREATE gateway event being parsed to the interaction callback (defer, message
  or modal) being answered by Discord; it is observed through an aiohttp trace on the
  client's own HTTP session, so every handler is covered without touching any of them.
  Autocomplete is not an acknowledgement and is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import flow
from adapters.discord.commands import add_commands
from adapters.discord.port import DiscordPort
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
AUTOCOMPLETE = 4  # interaction type: answered, but not an acknowledgement
CALLBACK_PATH = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
ACK_PENDING_MAX = 1000  # interactions never answered (errors) must not grow the map forever


def point_rest_at(api_base: str) -> bool:
    """Set discord.py's REST root; True when it is not Discord's own (the gateway moves too)."""
    base = api_base.rstrip("/")
    Route.BASE = base
    custom = base != DEFAULT_API_BASE
    if not custom:
        DiscordWebSocket.DEFAULT_GATEWAY = DEFAULT_GATEWAY
    return custom


class AckTimer:
    """Interaction id → when it arrived; the callback's HTTP response closes the interval."""

    def __init__(self, metrics: AckObserver) -> None:
        self.metrics = metrics
        self.arrived: dict[str, float] = {}
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._on_request_end)
        self.trace.on_request_exception.append(self._on_request_exception)

    def wrap_parser(self, state: Any) -> None:
        """Time-stamp INTERACTION_CREATE before discord.py dispatches it."""
        parsers: dict[str, Any] | None = getattr(state, "parsers", None)
        original = parsers.get("INTERACTION_CREATE") if parsers is not None else None
        if parsers is None or original is None:
            log.warning("discord.py internals changed: acknowledgement latency not measured")
            return

        def parse_interaction_create(data: dict[str, Any]) -> None:
            if data.get("type") != AUTOCOMPLETE:
                if len(self.arrived) >= ACK_PENDING_MAX:
                    self.arrived.clear()
                self.arrived[str(data.get("id"))] = time.perf_counter()
            original(data)

        parsers["INTERACTION_CREATE"] = parse_interaction_create

    def _interaction_id(self, url: yarl.URL) -> str | None:
        match = CALLBACK_PATH.search(url.path)
        return match.group(1) if match else None

    async def _on_request_end(
        self, _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        interaction_id = self._interaction_id(params.url)
        if interaction_id is None:
            return
        arrived = self.arrived.pop(interaction_id, None)
        if arrived is not None and params.response.status < 400:
            self.metrics.observe_ack("discord", time.perf_counter() - arrived)

    async def _on_request_exception(
        self,
        _session: aiohttp.ClientSession,
        _ctx: Any,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        interaction_id = self._interaction_id(params.url)
        if interaction_id is not None:
            self.arrived.pop(interaction_id, None)


class SoraClient(discord.Client):
    def __init__(
        self,
        service: BotService,
        acks: AckObserver,
        *,
        custom_api: bool,
        progress_interval: float = 3.0,
        **options: Any,
    ) -> None:
        self.ack_timer = AckTimer(acks)
        options.setdefault("http_trace", self.ack_timer.trace)
        super().__init__(intents=discord.Intents(guilds=True), **options)
        self.ack_timer.wrap_parser(self._connection)
        self.service = service
        self.custom_api = custom_api
        self.tree: app_commands.CommandTree[SoraClient] = app_commands.CommandTree(self)
        self.tree.on_error = self._on_tree_error  # type: ignore[method-assign]
        self.tree.interaction_check = self._track  # type: ignore[method-assign]
        self.inflight: set[asyncio.Task[Any]] = set()
        self.port = DiscordPort(self, service, progress_interval=progress_interval)
        self.ready = asyncio.Event()
        self.synced: list[app_commands.AppCommand] = []

    async def setup_hook(self) -> None:
        if self.custom_api:
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
            log.info("Discord gateway: %s", yarl.URL(url).with_query(None))
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        add_commands(self.tree)
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


class DiscordRuntime:
    """Discord as a `PlatformRuntime`; `client_options` go to discord.py's client."""

    serves_http = False

    def __init__(self, host: PlatformHost, **client_options: Any) -> None:
        settings = host.service.settings
        if settings.discord_token is None:
            raise ConfigError("DISCORD_TOKEN is not set.")
        self._token = settings.discord_token.get_secret_value()
        self._api_base = settings.discord_api_base
        # No voice here: discord.py would otherwise warn about voice libraries on every start.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        self.client = SoraClient(
            host.service,
            host.acks,
            custom_api=point_rest_at(settings.discord_api_base),
            **client_options,
        )
        self.task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> asyncio.Event:
        return self.client.ready

    @property
    def port(self) -> DiscordPort:
        return self.client.port

    @property
    def connection(self) -> asyncio.Task[None] | None:
        return self.task

    async def start(self) -> None:
        """Log in (fails fast on a bad token), sync commands, connect in the background."""
        try:
            await self.client.login(self._token)
        except discord.LoginFailure:
            await self.client.close()
            raise ConfigError(
                "DISCORD_TOKEN was refused by Discord (401): check the bot token."
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            await self.client.close()
            raise ConfigError(
                f"Discord could not be reached at {self._api_base} ({type(exc).__name__}): "
                "check the network (or DISCORD_API_BASE)."
            ) from None
        except discord.HTTPException as exc:
            await self.client.close()
            raise ConfigError(
                f"Discord answered {exc.status} while the bot logged in and synced its "
                f"commands ({exc.text or 'no detail'})."
            ) from None
        except BaseException:
            await self.client.close()
            raise
        self.task = asyncio.create_task(_connect(self.client), name="discord-gateway")

    async def close(self) -> None:
        """Let handlers already running finish (bounded), then disconnect."""
        inflight = set(self.client.inflight)
        if inflight:
            await asyncio.wait(inflight, timeout=DRAIN_TIMEOUT)
        await self.client.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self.task
        point_rest_at(DEFAULT_API_BASE)  # leave discord.py's globals as we found them


async def _connect(client: SoraClient) -> None:
    try:
        await client.connect(reconnect=True)
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the gateway intents; the bot needs no privileged intents")
        raise
    except Exception:
        log.exception("Discord gateway connection ended")
        raise
