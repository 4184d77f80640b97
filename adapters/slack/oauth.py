"""Installation mode: workspaces install the app by Slack's OAuth v2, through bolt's own flow.

    GET /slack/install          bolt's "Add to Slack" page; issues a state (stored, and set as
                                bolt's state cookie in the browser)
    GET /slack/oauth_redirect   Slack sends the installer back with ?code&state: bolt checks the
                                cookie and consumes the state, exchanges the code
                                (oauth.v2.access), then we check the team, then bolt saves
    app_uninstalled, tokens_revoked (bot)
                                the workspace's installation is deleted and its queued jobs are
                                cancelled (`BotService.workspace_removed`)

Invariants:
- A workspace outside SLACK_INSTALL_ALLOWED_TEAMS is refused after the code exchange and
  before anything is saved (`GuardedOAuthFlow.store_installation` raises, bolt then calls our
  failure handler): it gets a 403 page saying so, no row is written, and the token Slack just
  issued is given back (`apps.uninstall`), so the app does not stay in that workspace.
- An invalid, unknown, expired or replayed state, or a missing state cookie, gets bolt's failure
  page (4xx) and nothing is exchanged or saved.
- The state store, the installation store and bolt's authorization all read the product's
  database (adapters/slack/installations.py): any replica serves any step of an install.
- Tokens never reach a log line: we log team ids and counts only.
- An uninstall keeps everything but the tokens: a re-install of the same team finds its
  settings, jobs and ledger again (they are keyed by the team id).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.clients import ClientBook
from adapters.slack.installations import DatabaseStateStore, SealedInstallationStore
from bot.infra.config import Settings
from bot.services.interface import BotService, InstallRecords

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600  # how long an install link (its state) works
ROTATION_MINUTES = 120  # a rotating token is refreshed this long before it expires
_HTML = {"Content-Type": "text/html; charset=utf-8"}


class TeamNotAllowed(BoltError):
    """The installing workspace is not in SLACK_INSTALL_ALLOWED_TEAMS."""

    def __init__(self, team: str) -> None:
        super().__init__(f"workspace {team} may not install this app")
        self.team = team


def team_of(installation: Installation) -> str:
    """The team id an install is for (an org-wide install: its enterprise id)."""
    return str(installation.team_id or installation.enterprise_id or "")


class GuardedOAuthFlow(AsyncOAuthFlow):
    """bolt's flow, refusing teams outside the allow-list before the installation is saved."""

    def __init__(self, *, client: AsyncWebClient, settings: AsyncOAuthSettings, bot: Settings):
        super().__init__(client=client, settings=settings)
        self.bot_settings = bot

    async def store_installation(
        self, request: AsyncBoltRequest, installation: Installation
    ) -> None:
        team = team_of(installation)
        if not self.bot_settings.slack_team_allowed(team):
            log.warning(
                "Slack: workspace %s (%s) is not in SLACK_INSTALL_ALLOWED_TEAMS; its install "
                "was refused, nothing saved",
                team,
                installation.team_name or "no name",
            )
            await self._give_back(installation)
            raise TeamNotAllowed(team)
        await super().store_installation(request, installation)
        log.info("Slack: installed in workspace %s (%s)", team, installation.team_name or "")

    async def _give_back(self, installation: Installation) -> None:
        token = installation.bot_token or installation.user_token
        if not token:
            return
        try:
            # In the form body: slack_sdk's apps_uninstall would put the secret in the URL.
            await self.client.api_call(
                "apps.uninstall",
                data={
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret,
                },
                headers={"Authorization": f"Bearer {token}"},
            )
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            log.warning("Slack: could not remove the refused install (%s)", error)


def refused_page(team: str) -> str:
    return (
        "<html><head><title>Not available for this workspace</title></head><body>"
        "<h2>This app is not available for your workspace</h2>"
        f"<p>Workspace <code>{html.escape(team)}</code> is not on this bot's list of "
        "workspaces that may install it, so nothing was installed. Ask the bot's operator to "
        "add it to SLACK_INSTALL_ALLOWED_TEAMS.</p></body></html>"
    )


async def _on_success(args: AsyncSuccessArgs) -> BoltResponse:
    return await args.default.success(args)


async def _on_failure(args: AsyncFailureArgs) -> BoltResponse:
    if isinstance(args.error, TeamNotAllowed):
        return BoltResponse(status=403, body=refused_page(args.error.team), headers=dict(_HTML))
    if args.reason in ("invalid_state", "invalid_browser", "missing_code"):
        log.info("Slack: an install callback was refused (%s)", args.reason)
    return await args.default.failure(args)


class SlackInstalls:
    """Everything installation mode adds to the bolt app and the web server."""

    def __init__(self, settings: Settings, records: InstallRecords, client: AsyncWebClient) -> None:
        assert settings.slack_client_id is not None and settings.slack_client_secret is not None
        secret = settings.slack_client_secret.get_secret_value()
        client_id = settings.slack_client_id
        self.store = SealedInstallationStore(records, secret, client_id)
        redirect = (
            f"{settings.public_base_url}{REDIRECT_PATH}" if settings.public_base_url else None
        )
        oauth = AsyncOAuthSettings(
            client_id=client_id,
            client_secret=secret,
            scopes=list(settings.slack_scopes),
            user_scopes=[],
            redirect_uri=redirect,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            callback_options=AsyncCallbackOptions(success=_on_success, failure=_on_failure),
            installation_store=self.store,
            installation_store_bot_only=True,
            token_rotation_expiration_minutes=ROTATION_MINUTES,
            state_store=DatabaseStateStore(records, STATE_SECONDS),
            state_expiration_seconds=STATE_SECONDS,
            logger=logging.getLogger("slack_bolt.oauth"),
        )
        # bolt's rotator would call slack.com with a client of its own: use SLACK_API_URL.
        rotator = AsyncTokenRotator(client_id=client_id, client_secret=secret, client=client)
        oauth.authorize.token_rotator = rotator  # type: ignore[attr-defined]
        # The workspace's token is still read from the store for every request (an uninstall
        # stops it at once); what is kept is auth.test's answer for that token, which would
        # otherwise be one more Slack round trip before every ack.
        oauth.authorize.cache_enabled = True  # type: ignore[attr-defined]
        self.flow = GuardedOAuthFlow(client=client, settings=oauth, bot=settings)
        self.clients = ClientBook(
            api_url=settings.slack_api_url,
            session=client.session,
            store=self.store,
            rotator=rotator,
            rotation_minutes=ROTATION_MINUTES,
        )

    def register(
        self, app: AsyncApp, service: BotService, spawn: Callable[[Coroutine[Any, Any, None]], None]
    ) -> None:
        """The uninstall listeners (bolt skips authorization for these two events); their work
        is spawned, so the event is acknowledged first (the runtime's `spawn`)."""

        async def on_app_uninstalled(body: dict[str, Any], context: AsyncBoltContext) -> None:
            spawn(self.removed(service, context, body, "app_uninstalled"))

        async def on_tokens_revoked(
            event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
        ) -> None:
            spawn(revoked(event, body, context))

        async def revoked(
            event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
        ) -> None:
            tokens = event.get("tokens") or {}
            team = str(context.team_id or body.get("team_id") or "")
            for user in tokens.get("oauth") or []:
                await self.store.async_delete_installation(
                    enterprise_id=context.enterprise_id, team_id=team, user_id=str(user)
                )
            if tokens.get("bot"):
                await self.removed(service, context, body, "tokens_revoked")

        app.event("app_uninstalled")(on_app_uninstalled)
        app.event("tokens_revoked")(on_tokens_revoked)

    async def removed(
        self, service: BotService, context: AsyncBoltContext, body: dict[str, Any], why: str
    ) -> None:
        team = str(context.team_id or body.get("team_id") or "")
        if not team:
            log.warning("Slack: %s without a team id; ignored", why)
            return
        await self.store.async_delete_all(enterprise_id=context.enterprise_id, team_id=team)
        self.clients.forget(team)
        cancelled = await service.workspace_removed("slack", team, why)
        log.info(
            "Slack: %s in workspace %s: its tokens are deleted, %d waiting job(s) cancelled",
            why,
            team,
            cancelled,
        )

    async def handle_install(self, request: AsyncBoltRequest) -> BoltResponse:
        return await self.flow.handle_installation(request)

    async def handle_redirect(self, request: AsyncBoltRequest) -> BoltResponse:
        return await self.flow.handle_callback(request)
