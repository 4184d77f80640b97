"""The composition root: builds the whole core from `Settings`, and nothing else does.

    store (SQLite or PostgreSQL) ─▶ JobBook ─▶ Tracker ◀─ EvoLinkClient, MediaHost, ports
                                  │
                             SoraService  ◀── adapters (Discord, Slack, console), CLI
                                  │
                          web app (aiohttp): /healthz, /evolink/callback/{secret}, /media/{token}

Invariants: one event loop, one replica (REPLICA_ID: the job leases it holds), one store (a
SQLite connection or a PostgreSQL pool: DATABASE_URL, `open_store`), one EvoLink client per
process; secrets for the callback path and media tokens
are created once and kept in the database, so callback URLs and media links stay valid across
restarts. `stop()` releases everything `build_core` opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import logging
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.domain.catalog import Catalog
from bot.domain.errors import ConfigError
from bot.domain.models import Job
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient
from bot.infra.media import MediaHost
from bot.infra.store import Store, open_store
from bot.services.alerts import AccountGuard
from bot.services.interface import JobFinishedPort
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger
from bot.services.metrics import Metrics
from bot.services.oversight import PICKUP_EVERY, Oversight
from bot.services.port import ChatPort
from bot.services.prices import PriceBook
from bot.services.reconcile import Reconciler, Reconciliation, ahead_text
from bot.services.service import SoraService
from bot.services.tracker import Tracker
from bot.services.workspace_settings import EnvDefaults, WorkspaceSettings
from bot.web import build_web_app

log = logging.getLogger(__name__)

CLEANUP_EVERY = 3600.0
APPROVAL_SWEEP_EVERY = 30.0


@dataclass
class Core:
    settings: Settings
    catalog: Catalog
    store: Store
    evolink: EvoLinkClient
    media: MediaHost
    ledger: Ledger
    book: JobBook
    tracker: Tracker
    service: SoraService
    callback_secret: str
    prices: PriceBook
    owns_evolink: bool = True
    #: Samples the EvoLink account's credits and compares them with the ledger.
    reconciler: Reconciler | None = None
    #: This process's own figures (acknowledgement latencies); a new core starts from zero.
    metrics: Metrics = field(default_factory=Metrics)
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _sampling: bool = False

    def register_port(self, port: ChatPort) -> None:
        self.tracker.register_port(port)
        if isinstance(port, JobFinishedPort):
            self.tracker.on_finished.append(_finished_on(port.platform, port))

    def build_web_app(self) -> web.Application:
        return build_web_app(self)

    async def start(self) -> None:
        await self.prices.start()
        await self.ledger.workspace_settings.start()  # snapshot + changes from any replica
        await self.tracker.resume()
        self._background.append(asyncio.create_task(self._clean_media(), name="media-cleanup"))
        self._background.append(asyncio.create_task(self._expire_approvals(), name="approvals"))
        self._background.append(asyncio.create_task(self._pick_up_decisions(), name="pickup"))
        if self.reconciler is not None and self.settings.account_sample_minutes > 0:
            self._sampling = True
            sampler = self.reconciler.run_sampler(
                self.settings.account_sample_minutes * 60.0, self._account_ahead
            )
            self._background.append(asyncio.create_task(sampler, name="account-samples"))

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.prices.stop()
        await self.tracker.stop()
        if self._sampling and self.reconciler is not None:
            self._sampling = False
            with contextlib.suppress(Exception):
                await self.reconciler.sample("stop")
        if self.owns_evolink:
            await self.evolink.aclose()
        await self.store.close()

    async def _account_ahead(self, report: Reconciliation) -> None:
        await self.service.oversight.alert_account_spend(ahead_text(report))

    async def _expire_approvals(self) -> None:
        while True:
            try:
                await self.service.oversight.expire_due()
            except Exception:
                log.exception("expiring approvals failed")
            await asyncio.sleep(APPROVAL_SWEEP_EVERY)

    async def _pick_up_decisions(self) -> None:
        """Decisions made by another process (`sora-bot admin approve`): its approved job waits
        in this one's queue, and its requester is told by this one (the CLI has no platform).
        Two indexed reads every PICKUP_EVERY seconds."""
        while True:
            self.tracker.dispatch_soon()
            try:
                await self.service.oversight.tell_untold()
            except Exception:
                log.exception("telling approval decisions failed")
            await asyncio.sleep(PICKUP_EVERY)

    async def _clean_media(self) -> None:
        while True:
            await asyncio.to_thread(self.media.cleanup)
            await asyncio.sleep(CLEANUP_EVERY)


async def build_core(
    settings: Settings, *, evolink: EvoLinkClient | None = None, require_key: bool = True
) -> Core:
    """Open the store and wire the core. Pass `evolink` to use a client you own (demo, tests).

    `require_key=False` is for offline commands (`admin …`) that never start the tracker.
    """
    catalog = Catalog.load(settings.catalog_path)
    catalog.check_default_model(settings.default_model)
    owns = evolink is None
    if evolink is None:
        key = settings.evolink_api_key
        if key is None and require_key:
            raise ConfigError("EVOLINK_API_KEY is not set (get a key at evolink.ai).")
        evolink = EvoLinkClient(settings.evolink_base_url, key.get_secret_value() if key else "")
    created = not settings.database_exists()
    evolink.use_catalog(catalog)
    store = await open_store(settings.database_url, pool_size=settings.database_pool_size)
    # The first line a command logs: which database it reads and writes (DATABASE_URL).
    log.info("database %s%s", settings.database_where, " (new)" if created else "")
    try:
        callback_secret = await store.meta_secret("callback_secret")
        media = MediaHost(
            settings.media_dir,
            await store.meta_secret("media_secret"),
            settings.public_base_url,
            settings.media_retention_days,
        )
    except BaseException:
        await store.close()
        raise
    workspaces = WorkspaceSettings(store, EnvDefaults.from_settings(settings), catalog)
    ledger = Ledger(
        store,
        default_limit=settings.user_credits_per_period,
        default_team_budget=settings.team_credits_per_period,
        period_kind=settings.budget_period,
        timezone=settings.timezone,
        workspace_settings=workspaces,
    )
    book = JobBook(store, ledger, replica=settings.replica_id)
    prices = PriceBook(store, evolink, refresh_minutes=settings.price_refresh_minutes)
    await prices.load_saved()
    workspaces.prices = lambda: prices.current
    await workspaces.reload()
    callback_url = None
    if settings.public_base_url:
        callback_url = f"{settings.public_base_url}/evolink/callback/{callback_secret}"
    tracker = Tracker(
        book,
        evolink,
        media,
        callback_url=callback_url,
        max_per_user=settings.max_jobs_per_user,
        max_per_workspace=settings.max_jobs_per_workspace,
        lease_seconds=settings.lease_seconds,
        wakeups=store,
        # SQLite: one process per database file, so a start takes every lease (a restart
        # after a crash resumes at once); PostgreSQL: only free or expired ones (replicas).
        takeover=store.engine == "sqlite",
    )
    oversight = Oversight(
        book, tracker, AccountGuard(evolink), dt.timedelta(minutes=settings.approval_ttl_minutes)
    )
    tracker.on_finished.append(oversight.after_job)
    service = SoraService(settings, catalog, book, tracker, media, oversight, prices)
    return Core(
        settings=settings,
        catalog=catalog,
        store=store,
        evolink=evolink,
        media=media,
        ledger=ledger,
        book=book,
        tracker=tracker,
        service=service,
        callback_secret=callback_secret,
        prices=prices,
        owns_evolink=owns,
        reconciler=Reconciler(book, evolink),
    )


@dataclass
class WebServer:
    runner: web.AppRunner
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        # Let in-flight requests (acknowledgements) finish before closing.
        with contextlib.suppress(Exception):
            await self.runner.shutdown()
        await self.runner.cleanup()


def _finished_on(
    platform: str, port: JobFinishedPort
) -> Callable[[Job], Coroutine[Any, Any, None]]:
    """The tracker's finish hook for one port: only that platform's jobs."""

    async def hook(job: Job) -> None:
        if job.requester.platform == platform:
            await port.on_job_finished(job)

    return hook


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: any free one), to serve on with `start_web`.

    Bound before anything else starts, so a port already taken (another bot, a stale process)
    stops the command at once with one line, ConfigError, never a half-started process."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"HOST {host!r} is not an address to listen on ({exc}).") from None
    sock = socket.socket(family, kind, proto)
    try:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            # As asyncio does: a restart may bind while old connections sit in TIME_WAIT;
            # a port another process listens on is still refused.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        hint = (
            "ports below 1024 need privileges: use a higher PORT (e.g. 8080) behind a proxy."
            if exc.errno == errno.EACCES
            else "is another sora-bot (or another program) using that port? Stop it, or set "
            "PORT to a free port."
        )
        raise ConfigError(f"cannot listen on {host}:{port}: {reason} — {hint}") from None
    return sock


async def start_web(
    app: web.Application, host: str, port: int, *, sock: socket.socket | None = None
) -> WebServer:
    """Serve `app` on host:port (port 0: any free one), or on `sock`, already bound."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    site: web.BaseSite = (
        web.TCPSite(runner, host, port) if sock is None else web.SockSite(runner, sock)
    )
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None) or ()
    bound = sockets[0].getsockname()[1] if sockets else port
    return WebServer(runner=runner, port=int(bound))
