"""One function wires a whole process: the core, its web server, the chat platforms, and the
order they stop in. `sora-bot run`, `sora-bot demo` and the tests all go through it.

    async with running_process(settings, platforms=[SlackRuntime, DiscordRuntime]) as process:
        await process.until_stopped(stop)          # a signal, or a platform that died

The entry point chooses the platforms and passes their factories in (bot/services/interface.py), so
nothing in the core imports an adapter.

Start, in this order:
1. Build the core (bot/app.py) and its web app; build every platform from a `PlatformHost`
   (Slack's HTTP mode adds its route now, before the server starts).
2. Start each platform (log in, connect) and register its port, then the ports the caller
   made itself (`ports`: the console, a test's recorder).
3. Serve HTTP (health, EvoLink callbacks, media, Slack events): every port is registered by
   the time the first platform request arrives.
4. Start the core: it tells endings a crash left untold and resumes unfinished jobs, to the
   ports registered above.

Stop (on leaving the block; never raises over the store's closing):
1. Stop taking platform events, on every platform at once: the web server closes its listening
   socket and lets requests already received run to their response (an acknowledgement Slack
   waits for is still sent, bounded by the runner's `shutdown_timeout`); platforms with their
   own connection (Discord) let running handlers finish, then disconnect.
2. Close the platforms that take events through the web server (Slack's HTTP mode): work
   spawned by the last acknowledgements still has somewhere to run.
3. Stop the tracker and close the store. Jobs still open stay in the store: the next start
   resumes them (nothing lost, nothing submitted twice).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.app import Core, WebServer, bind_listener, build_core, start_web
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient
from bot.infra.logs import register_secrets
from bot.services.installs import Installs
from bot.services.interface import BotService, PlatformFactory, PlatformHost, PlatformRuntime
from bot.services.leases import Leases
from bot.services.port import ChatPort

log = logging.getLogger(__name__)


@dataclass
class Process:
    """A running process: its core, web server (None when not serving HTTP) and platforms."""

    core: Core
    web: WebServer | None
    platforms: list[PlatformRuntime]

    @property
    def service(self) -> BotService:
        return self.core.service

    @property
    def jobs_in_flight(self) -> int:
        """Jobs the tracker follows right now (submitted to EvoLink, not yet ended)."""
        return self.core.tracker.in_flight

    async def wait_idle(self, timeout: float) -> None:
        """Until no job is in flight (or `timeout` seconds passed)."""
        await self.core.tracker.wait_idle(timeout)

    @property
    def base_url(self) -> str:
        if self.web is None:
            raise RuntimeError("this process serves no HTTP")
        return self.web.base_url

    async def until_stopped(self, stop: asyncio.Event) -> None:
        """Wait for `stop`, or for a platform connection that ended by itself (bad token,
        gateway closed for good): a bot that silently lost its platform must not look alive."""
        watched: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        watched += [p.connection for p in self.platforms if p.connection is not None]
        done, _pending = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for finished in done:
            if finished is not watched[0] and not finished.cancelled() and finished.exception():
                log.error("a platform connection ended: %s", finished.exception())
        watched[0].cancel()


@asynccontextmanager
async def running_process(
    settings: Settings,
    *,
    platforms: Sequence[PlatformFactory] = (),
    ports: Sequence[ChatPort] = (),
    evolink: EvoLinkClient | None = None,
    sock: socket.socket | None = None,
    serve_http: bool = True,
    start_core: bool = True,
) -> AsyncIterator[Process]:
    """Start a process as the module docstring says; stop it on leaving the block.

    `evolink`: a client the caller owns (the demo's simulator); `sock`: an already bound
    socket to serve on instead of HOST:PORT; `serve_http=False`: no web server (the console
    demo, which has no public URL); `start_core=False`: serve, but resume no jobs (tests that
    inspect a store).
    """
    if serve_http and sock is None:
        # Bind first: a taken port must stop the process before anything says it is up.
        sock = bind_listener(settings.host, settings.port)
        owned_sock: socket.socket | None = sock
    else:
        owned_sock = None
    try:
        core = await build_core(settings, evolink=evolink)
    except BaseException:
        if owned_sock is not None:
            owned_sock.close()
        raise
    register_secrets([core.callback_secret])
    web_app = core.build_web_app()
    host = PlatformHost(
        service=core.service,
        web_app=web_app,
        acks=core.metrics,
        leases=Leases(core.store),
        installs=Installs(core.store),
    )
    runtimes: list[PlatformRuntime] = []
    web: WebServer | None = None
    try:
        runtimes += [factory(host) for factory in platforms]
        for runtime in runtimes:
            await runtime.start()
            core.register_port(runtime.port)
        for port in ports:
            core.register_port(port)
        if serve_http:
            web = await start_web(web_app, settings.host, settings.port, sock=sock)
            where = settings.host if sock is None else sock.getsockname()[0]
            log.info("HTTP server on %s:%d", where, web.port)
            owned_sock = None  # the server owns it now and closes it
        if start_core:
            await core.start()
        yield Process(core=core, web=web, platforms=runtimes)
    finally:
        if owned_sock is not None:
            owned_sock.close()
        await _stop_taking_events(web, runtimes)
        await core.stop()


async def _stop_taking_events(web: WebServer | None, runtimes: list[PlatformRuntime]) -> None:
    """Steps 1 and 2 of stopping; never raises (the store must still close)."""

    async def close(runtime: PlatformRuntime) -> None:
        try:
            await runtime.close()
        except Exception:
            log.exception("error while closing a platform")

    async def drain_http() -> None:
        if web is None:
            return
        try:
            await web.close()
        except Exception:
            log.exception("error while closing the HTTP server")

    own_connection = [r for r in reversed(runtimes) if not r.serves_http]
    await asyncio.gather(drain_http(), *(close(r) for r in own_connection))
    for runtime in runtimes:
        if runtime.serves_http:
            await close(runtime)
