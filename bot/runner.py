"""`sora-bot run`: every platform that has tokens, plus the HTTP server, on one event loop.

Shutdown on SIGTERM/SIGINT, in this order (the process then exits 0):
1. Stop taking platform events, at the same time on every platform: the HTTP server closes its
   listening socket (no new Slack requests) while requests already received run to their
   response — an acknowledgement Slack is waiting for is still sent (bounded by the web
   runner's `shutdown_timeout`, see `bot.app.start_web`); Discord lets running interaction
   handlers finish, then disconnects.
2. Close the other platforms (Slack: let work spawned after an ack finish, bounded, then
   cancel; Socket Mode disconnects).
3. Stop the tracker and close the store. Jobs still open are left in the store: the next start
   resumes them (nothing is lost, nothing is submitted twice).
A second signal during shutdown is ignored: every step above is already bounded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from typing import Any, Protocol

from bot.app import WebServer, build_core, start_web
from bot.config import Settings
from bot.errors import ConfigError
from bot.logs import register_secrets, secrets_of

log = logging.getLogger(__name__)


class PlatformRuntime(Protocol):
    async def close(self) -> None: ...


def enabled_platforms(settings: Settings) -> list[str]:
    """Which platforms `run` will start; raises ConfigError naming what is missing."""
    platforms = []
    if settings.discord_token is not None:
        platforms.append("discord")
    if settings.slack_problem is not None:
        raise ConfigError(settings.slack_problem)
    if settings.slack_mode is not None:
        platforms.append("slack")
    if not platforms:
        raise ConfigError(
            "No chat platform is configured: set DISCORD_TOKEN (Discord) and/or "
            "SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET or SLACK_APP_TOKEN (Slack). "
            "To see the bot work without any token, run: sora-bot demo"
        )
    if settings.evolink_api_key is None:
        raise ConfigError("EVOLINK_API_KEY is not set: the bot needs it to make videos.")
    return platforms


async def run_bot(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    platforms = enabled_platforms(settings)
    register_secrets(secrets_of(settings))
    core = await build_core(settings)
    register_secrets([core.callback_secret])
    app = core.build_web_app()
    runtimes: list[PlatformRuntime] = []
    slack: Any = None
    if "slack" in platforms:
        from adapters.slack import attach_slack

        slack = attach_slack(core, app)
    web = await start_web(app, settings.host, settings.port)
    log.info("HTTP server on %s:%d", settings.host, web.port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":  # the Windows event loop has no signal handlers
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await core.start()
        if slack is not None:
            await slack.start()
        if "discord" in platforms:
            from adapters.discord import start_discord

            runtimes.append(await start_discord(core))
        log.info("sora-bot running: %s", ", ".join(platforms))
        # Everything built at start-up lives as long as the process: move it out of the
        # collector's sight, so full collections (pauses of ~100 ms with thousands of jobs
        # alive, measured in bench/ack_latency.py) stay short.
        gc.collect()
        gc.freeze()
        await _until_stopped_or_dead(stop, [*runtimes, *([slack] if slack else [])])
        log.info("shutting down: finishing in-flight requests")
    finally:
        await _shut_down(web, runtimes, slack)
        await core.stop()
        log.info("stopped")
    return 0


async def _shut_down(web: WebServer, runtimes: list[PlatformRuntime], slack: Any) -> None:
    """Steps 1 and 2 of the module docstring; never raises (the store must still close)."""

    async def close(runtime: PlatformRuntime) -> None:
        try:
            await runtime.close()
        except Exception:
            log.exception("error while closing a platform")

    async def drain_http() -> None:
        try:
            await web.close()
        except Exception:
            log.exception("error while closing the HTTP server")

    # Slack's HTTP requests are drained by the web server; its runtime closes after that,
    # so work spawned by those last acknowledgements still has somewhere to run.
    await asyncio.gather(drain_http(), *(close(r) for r in reversed(runtimes)))
    if slack is not None:
        await close(slack)


async def _until_stopped_or_dead(stop: asyncio.Event, runtimes: list[PlatformRuntime]) -> None:
    """Wait for a signal, or for a platform connection that ended by itself (bad token,
    gateway closed for good): a bot that silently lost its platform must not look alive."""
    watched: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
    for runtime in runtimes:
        task = getattr(runtime, "task", None)
        if isinstance(task, asyncio.Task):
            watched.append(task)
    done, _pending = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    for finished in done:
        if finished is not watched[0] and not finished.cancelled() and finished.exception():
            log.error("a platform connection ended: %s", finished.exception())
    watched[0].cancel()
