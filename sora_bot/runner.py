"""`sora-bot run`: every platform that has tokens, plus the HTTP server, on one event loop.

This entry point only chooses the platforms (their factories, from `adapters/`) and waits for
SIGTERM/SIGINT; `bot.bootstrap.running_process` wires the process and stops it in its
documented order (stop taking events on every platform at once while the HTTP server drains
what it received, close the platforms served over HTTP, then stop the tracker and close the
store), after which the process exits 0. A second signal during shutdown is ignored: every
step is already bounded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from adapters.discord import DiscordRuntime
from adapters.slack import SlackRuntime
from bot.bootstrap import running_process
from bot.domain.errors import ConfigError
from bot.infra.config import Settings
from bot.infra.logs import register_secrets, secrets_of
from bot.services.interface import PlatformFactory

log = logging.getLogger(__name__)

#: Every platform `run` knows, in the order they start (Slack's port is then registered
#: before Discord's login, as quickly as possible after its route exists).
FACTORIES: dict[str, PlatformFactory] = {"slack": SlackRuntime, "discord": DiscordRuntime}


def enabled_platforms(settings: Settings) -> list[str]:
    """Which platforms `run` will start; raises ConfigError naming every problem at once
    (`Settings.run_problems`, the list `sora-bot check` fails on too)."""
    problems = settings.run_problems
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(
            f"cannot start, {len(problems)} problems:\n  - " + "\n  - ".join(problems)
        )
    platforms = []
    if settings.discord_token is not None:
        platforms.append("discord")
    if settings.slack_mode is not None:
        platforms.append("slack")
    return platforms


async def run_bot(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    platforms = enabled_platforms(settings)
    register_secrets(secrets_of(settings))
    factories = [factory for name, factory in FACTORIES.items() if name in platforms]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":  # the Windows event loop has no signal handlers
        # Set before starting: a signal during start-up stops the bot as soon as it is up.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    async with running_process(settings, platforms=factories) as process:
        log.info(
            "sora-bot running: %s — replica %s, job leases of %g s",
            ", ".join(platforms),
            settings.replica_id,
            settings.lease_seconds,
        )
        # Everything built at start-up lives as long as the process: move it out of the
        # collector's sight, so full collections (pauses of ~100 ms with thousands of jobs
        # alive, measured in bench/ack_latency.py) stay short.
        gc.collect()
        gc.freeze()
        await process.until_stopped(stop)
        log.info("shutting down: finishing in-flight requests")
    log.info("stopped")
    return 0
