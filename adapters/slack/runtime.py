"""The Slack runtime: one bolt `AsyncApp`, served at `POST /slack/events` or over Socket Mode.

    SlackRuntime(host)       a PlatformFactory (bot/services/interface.py): build the app, add the
    HTTP
                             route to the host's web app (HTTP mode); the wiring registers the port
    await runtime.start()    Socket Mode: connect (HTTP mode: nothing to do)
    await runtime.close()    disconnect, cancel the work still running

Invariants:
- HTTP mode needs SLACK_SIGNING_SECRET; bolt's request verification answers a missing, wrong or
  stale (> 5 minutes) signature with 401 before any listener, authorisation or Web API call.
- Socket Mode (SLACK_APP_TOKEN set) adds no HTTP route: Slack's own socket authenticates.
- Token mode (SLACK_BOT_TOKEN): one `AsyncWebClient` for the bot token, pointed at
  SLACK_API_URL, retries 429s (honouring `Retry-After`) and connection errors. Installation mode
  (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET, adapters/slack/oauth.py): bolt's OAuth flow at
  GET /slack/install and GET /slack/oauth_redirect on the same web app, and a token per
  workspace. Either way every Web API call takes its client from `clients.for_team(team)`
  (adapters/slack/clients.py).
- `start()` checks the bot token with `auth.test` (both modes) before anything is served: a
  refused token or an unreachable Slack is a `ConfigError` in one line, never "running". In
  installation mode there is no one token: it logs how many workspaces are installed.
- bolt's "As you gave `client` as well, `token` will be unused" (logged because SLACK_BOT_TOKEN
  is in the environment while we hand bolt our own client, on purpose) is dropped by a filter
  on bolt's app logger that matches that one message; every other bolt line passes.
- bolt runs with `process_before_response=True`: a request is answered as soon as its listener
  returns, not at bolt's next 10 ms look for an ack, so every listener acknowledges and
  returns at once — anything after its `ack()` (a `views.open`, the uninstall clean-up, a
  job's admission) is spawned — and an exception before the ack is a 500 (answered 400 here).
- Work started after `ack()` runs in tasks this runtime keeps references to (`spawn`), so none
  is garbage-collected mid-flight; `close()` lets it finish (at most `DRAIN_TIMEOUT`), then
  cancels what is left — a request acknowledged just before shutdown still gets its job. In
  HTTP mode that work starts only once no request is being answered and none arrived for
  `QUIET` (at most `HOLD_MAX` later), so the acks of a burst — whose requests arrive a few
  milliseconds apart, each often answered before the next comes — are not queued behind the
  burst's work.
- HTTP mode serves a correctly signed request once: bolt checks only the signature and the
  5-minute window, so the very same signed bytes posted again (a replay by whoever saw them)
  would be a second job and a second hold. Slack does not retry slash commands and gives every
  command its own `trigger_id`, so a byte-identical copy within the window is a replay: it
  gets an empty 200 and does nothing (`ReplayGuard`).
- `POST /slack/events` never answers 5xx for a body it cannot read: unparseable or
  impossible payloads get 400 when signed, 401 when not (bolt itself would raise).
- HTTP mode observes each request's acknowledgement latency (request received → response
  ready) in the core's metrics (`GET /metrics`, `sora_ack_latency_seconds{platform="slack"}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.approval_handlers import ApprovalHandlers
from adapters.slack.clients import ClientBook, web_client
from adapters.slack.handlers import SlackHandlers
from adapters.slack.oauth import SlackInstalls
from adapters.slack.port import SlackPort, slack_error
from adapters.slack.settings_modal import SettingsModal
from bot.domain.errors import ConfigError
from bot.infra.config import Settings
from bot.services.interface import PlatformHost

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
DRAIN_TIMEOUT = 5.0
HOLD_MAX = 0.2  # seconds: work spawned after an ack waits at most this for the other acks
QUIET = 0.01  # seconds without a new request that end a burst (its requests come ms apart)
# What bolt raises on bodies Slack would never send (a `payload` that is not JSON, a channel
# that is a number, an empty `actions` list): reading them is bolt's job, answering is ours.
_UNREADABLE = (LookupError, TypeError, ValueError, AttributeError)
REPLAY_WINDOW = 5 * 60.0  # bolt refuses older timestamps: remembering longer adds nothing
BOLT_APP_LOGGER = "slack_bolt.AsyncApp"  # slack_bolt.logger.get_bolt_logger(AsyncApp)


class _ClientGivenOnPurpose(logging.Filter):
    """Drops bolt's "`token` will be unused" warning: we pass the client, by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return warning_client_prioritized_and_token_skipped() != record.getMessage()


_QUIET_TOKEN_WARNING = _ClientGivenOnPurpose()


class ReplayGuard:
    """Remembers the signatures of requests already served, for the replay window."""

    def __init__(self, signing_secret: str, window: float = REPLAY_WINDOW) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._window = window
        self._seen: OrderedDict[str, float] = OrderedDict()  # signature → first seen

    def verdict(self, body: str, timestamp: str | None, signature: str | None) -> str:
        """`malformed` (a timestamp that is not a number: slack_sdk's verifier would raise and
        bolt answer 500), `replay` (validly signed and served before) or `new`.

        Invalid signatures are not recorded (bolt refuses them), so forged traffic cannot fill
        the memory or shadow a real request."""
        if timestamp is not None and not timestamp.strip().isdigit():
            return "malformed"
        now = time.monotonic()
        while self._seen and next(iter(self._seen.values())) < now - self._window:
            self._seen.popitem(last=False)
        if not self.signed(body, timestamp, signature):
            return "new"
        assert signature is not None  # signed() checked it
        if signature in self._seen:
            return "replay"
        self._seen[signature] = now
        return "new"

    def signed(self, body: str, timestamp: str | None, signature: str | None) -> bool:
        if not signature or timestamp is None or not timestamp.strip().isdigit():
            return False
        return self._verifier.is_valid(body, timestamp, signature)


class SlackRuntime:
    """Slack as a `PlatformRuntime`; `client` replaces the Web API client (tests; in
    installation mode a client without a token, for the OAuth exchange)."""

    def __init__(self, host: PlatformHost, *, client: AsyncWebClient | None = None) -> None:
        service = host.service
        settings = service.settings
        if settings.slack_problem is not None:
            raise ConfigError(settings.slack_problem)
        token = settings.slack_bot_token
        if token is None and not settings.slack_installs:
            raise ConfigError(
                "SLACK_BOT_TOKEN is not set (xoxb-…, from OAuth & Permissions), nor "
                "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (installs by OAuth)."
            )
        app_token = settings.slack_app_token
        self.socket_mode = settings.slack_mode == "socket"
        secret = settings.slack_signing_secret
        self._app_token = app_token.get_secret_value() if app_token else None
        self._session: aiohttp.ClientSession | None = None
        if client is None:
            self._session = aiohttp.ClientSession()
            plain = None if token is None else token.get_secret_value()
            client = web_client(plain, settings.slack_api_url, self._session)
        self.client = client
        self._api_url = settings.slack_api_url
        # The same filter object each time: addFilter does not add it twice.
        logging.getLogger(BOLT_APP_LOGGER).addFilter(_QUIET_TOKEN_WARNING)
        signing = secret.get_secret_value() if secret else None
        self.installs: SlackInstalls | None = None
        if settings.slack_installs:
            self.installs = SlackInstalls(settings, host.installs, self.client)
            self.clients = self.installs.clients
            self.app = AsyncApp(
                client=self.client,
                signing_secret=signing,
                request_verification_enabled=not self.socket_mode,
                process_before_response=True,  # see the module docstring
                oauth_flow=self.installs.flow,
            )
            self.installs.register(self.app, service, self.spawn)
            host.web_app.router.add_get(self.installs.flow.install_path, self.handle_oauth)
            host.web_app.router.add_get(self.installs.flow.redirect_uri_path, self.handle_oauth)
        else:
            self.clients = ClientBook.single(self.client)
            self.app = AsyncApp(
                client=self.client,
                signing_secret=signing,
                request_verification_enabled=not self.socket_mode,
                process_before_response=True,  # see the module docstring
            )
        self.port = SlackPort(self.clients, service, service.catalog)
        self.handlers = SlackHandlers(service, self.port, self.clients, self.spawn)
        SettingsModal(service, self.spawn).register(self.app)  # before the general /sora
        self.handlers.register(self.app)
        self.approvals = ApprovalHandlers(
            service, self.port, self.spawn, self.handlers.publish_home
        )
        self.approvals.register(self.app)
        self._tasks: set[asyncio.Task[None]] = set()
        self._answering = 0  # HTTP requests being answered now (`spawn` waits for none)
        self._arrived = float("-inf")  # monotonic: when the latest HTTP request came in
        self._answered = asyncio.Event()
        self._socket: AsyncSocketModeHandler | None = None
        self._replays = None if secret is None else ReplayGuard(secret.get_secret_value())
        self.metrics = host.acks
        if not self.socket_mode:
            host.web_app.router.add_post(EVENTS_PATH, self.handle)

    @property
    def serves_http(self) -> bool:
        return not self.socket_mode

    @property
    def connection(self) -> None:
        return None  # Socket Mode reconnects by itself; HTTP mode has no connection

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work after an ack, keeping a reference until it ends. In HTTP mode it starts
        once no request is being answered (its own included) and none came in for QUIET: a
        burst's other acks go out before any of the burst's work (admission, Web API calls)
        takes the loop, which would delay them all; if requests never stop coming, it starts
        after HOLD_MAX at most."""
        task = asyncio.create_task(self._after_acks(coro))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _after_acks(self, coro: Coroutine[Any, Any, None]) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + HOLD_MAX
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    while True:
                        if self._answering:
                            await self._answered.wait()
                            continue
                        quiet = time.monotonic() - self._arrived
                        if quiet >= QUIET or self.socket_mode:
                            break
                        await asyncio.sleep(QUIET - quiet)
        except asyncio.CancelledError:
            coro.close()  # cancelled before it started (a shutdown)
            raise
        await coro

    async def handle(self, request: web.Request) -> web.Response:
        """`POST /slack/events`, counted while it is being answered (see `spawn`)."""
        self._arrived = time.monotonic()
        self._answering += 1
        self._answered.clear()
        try:
            return await self._answer(request)
        finally:
            self._answering -= 1
            if not self._answering:
                self._answered.set()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("Slack work failed", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until the work spawned so far has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _answer(self, request: web.Request) -> web.Response:
        """`POST /slack/events`: translate, dispatch through bolt, translate back."""
        received = time.perf_counter()
        body = await request.text()  # aiohttp caches it: bolt reads the same text below
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if self._replays is not None:
            verdict = self._replays.verdict(body, timestamp, signature)
            if verdict == "malformed":
                return web.Response(status=401, text="invalid request")
            if verdict == "replay":
                log.warning("Slack: a replayed request was ignored")
                return web.Response(status=200)
        try:
            bolt_request = await to_bolt_request(request)
        except _UNREADABLE:
            # bolt parses the body before it checks the signature, and a `payload` that is not
            # JSON, or not shaped as Slack shapes it, raises: refuse it, never with a 500.
            signed = self._replays is not None and self._replays.signed(body, timestamp, signature)
            return web.Response(status=400 if signed else 401, text="invalid request")
        bolt_response = await self.app.async_dispatch(bolt_request)
        if bolt_response.status >= 500:
            # bolt turns its own exceptions (matching listeners against a body Slack would
            # never send, e.g. an empty `actions` list) into a bare 500 after logging them.
            # The request cannot succeed on a retry: say so with a 400, not "server down".
            log.warning("Slack: bolt could not handle a request; answered 400")
            return web.Response(status=400, text="invalid request")
        response = await to_aiohttp_response(bolt_response)
        if bolt_response.status < 400:  # refused (forged, stale) requests are not acks
            self.metrics.observe_ack("slack", time.perf_counter() - received)
        return response

    async def handle_oauth(self, request: web.Request) -> web.Response:
        """`GET /slack/install` and `GET /slack/oauth_redirect`: bolt's OAuth flow."""
        assert self.installs is not None
        bolt_request = await to_bolt_request(request)
        if request.path == self.installs.flow.install_path:
            bolt_response = await self.installs.handle_install(bolt_request)
        else:
            bolt_response = await self.installs.handle_redirect(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def start(self) -> None:
        """Check the bot token (auth.test), or count the installs; Socket Mode: then connect."""
        if self.installs is not None:
            teams = await self.installs.store.installed_teams()
            log.info(
                "Slack: installation mode, installed in %d workspace(s); installs at %s",
                len(teams),
                self.installs.flow.install_path,
            )
        else:
            auth = await verify_token(self.client, self._api_url)
            log.info("Slack: bot %s in workspace %s", auth.get("user"), auth.get("team"))
        if self._app_token is None:
            return
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._socket = AsyncSocketModeHandler(self.app, self._app_token)
        await self._socket.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack: connected in Socket Mode")

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=DRAIN_TIMEOUT)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


async def check_slack(settings: Settings) -> tuple[bool, str]:
    """For `sora-bot check`: does the bot token work against SLACK_API_URL? (ok, plain words)"""
    if settings.slack_problem is not None:
        return False, settings.slack_problem
    if settings.slack_installs:
        mode = "Socket Mode" if settings.slack_mode == "socket" else f"HTTP mode at {EVENTS_PATH}"
        return True, (
            "Slack OK: installation mode (SLACK_CLIENT_ID), workspaces install at "
            f"/slack/install ({mode})."
        )
    if settings.slack_bot_token is None:
        return False, "SLACK_BOT_TOKEN is not set: Slack is off."
    client = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        auth = await verify_token(client, settings.slack_api_url)
    except ConfigError as exc:
        return False, str(exc)
    mode = "Socket Mode" if settings.slack_mode == "socket" else f"HTTP mode at {EVENTS_PATH}"
    return True, f"Slack OK: bot {auth.get('user')} in workspace {auth.get('team')} ({mode})."


async def verify_token(client: AsyncWebClient, api_url: str) -> dict[str, Any]:
    """`auth.test` with the bot token: its answer, or a one-line `ConfigError` saying whether
    Slack refused the token or could not be reached (never the token itself)."""
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(
            f"SLACK_BOT_TOKEN was refused by Slack ({slack_error(exc)}): check the bot token "
            "(xoxb-…, OAuth & Permissions)."
        ) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise ConfigError(
            f"Slack could not be reached at {api_url} ({type(exc).__name__}): check the "
            "network (or SLACK_API_URL)."
        ) from None
    return dict(auth.data) if isinstance(auth.data, dict) else {}
