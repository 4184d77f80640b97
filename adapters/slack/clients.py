"""`ClientBook`: the Web API client of each workspace — the one bot token (token mode), or the
installation's bot token of that team, read from the installation store (installation mode).

    client = await clients.for_team(job.requester.workspace)   # NotInstalled when it has none

Invariants:
- Every Web API call about a workspace goes through `for_team(team)`: a job's progress,
  upload and notes carry its own workspace's token, whichever replica or restart runs it,
  because the token is read from the store by the job's workspace, never kept per job.
- Clients share one aiohttp session (connections and TLS reused) and SLACK_API_URL, and retry
  429s and connection errors.
- A looked-up token is kept at most `TTL` seconds (and never past its expiry minus the
  rotation margin), so an uninstall seen by another replica stops this one within `TTL`;
  `forget(team)` drops it at once (this replica's uninstall). A rotating token (the install
  carries a refresh token) is refreshed with `oauth.v2.access` when it is within
  `rotation_minutes` of expiring, and the new one saved before use.
- A team with no installation (never installed, uninstalled, unreadable after a client secret
  change) raises `NotInstalled`, never a Web API call with someone else's token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3
TTL = 30.0  # seconds a looked-up workspace token is reused


class NotInstalled(Exception):
    """The workspace has no installation of the app (any more)."""

    def __init__(self, team: str) -> None:
        super().__init__(f"the Slack app is not installed in workspace {team}")
        self.team = team


def web_client(
    token: str | None, base_url: str, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """A Web API client: SLACK_API_URL, 429s and connection errors retried; with a shared
    `session`, connections (and TLS) are reused instead of opened per call."""
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


class ClientBook:
    """`for_team(team)` → that workspace's client. Token mode: `ClientBook.single(client)`."""

    def __init__(
        self,
        *,
        api_url: str,
        session: aiohttp.ClientSession | None = None,
        client: AsyncWebClient | None = None,
        store: AsyncInstallationStore | None = None,
        rotator: AsyncTokenRotator | None = None,
        rotation_minutes: int = 120,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (client is None) == (store is None):
            raise ValueError("a ClientBook has one client (token mode) or a store (installs)")
        self.api_url = api_url
        self.session = session
        self.store = store
        self.rotator = rotator
        self.rotation_minutes = rotation_minutes
        self.clock = clock
        self._single = client
        self._known: dict[str, tuple[float, AsyncWebClient]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def single(cls, client: AsyncWebClient) -> ClientBook:
        return cls(api_url=str(client.base_url), session=client.session, client=client)

    @property
    def installs(self) -> bool:
        """Installation mode (a token per workspace)?"""
        return self.store is not None

    @property
    def default(self) -> AsyncWebClient:
        """A client without a workspace token (token mode: the one client): for calls that
        carry their own credentials (`oauth.v2.access`, `auth.test` with a token)."""
        if self._single is not None:
            return self._single
        return web_client(None, self.api_url, self.session)

    def forget(self, team: str) -> None:
        self._known.pop(team, None)

    async def for_team(self, team: str) -> AsyncWebClient:
        if self._single is not None:
            return self._single
        known = self._known.get(team)
        if known is not None and known[0] > self.clock():
            return known[1]
        async with self._locks.setdefault(team, asyncio.Lock()):
            known = self._known.get(team)
            if known is not None and known[0] > self.clock():
                return known[1]
            client, lifetime = await self._look_up(team)
            self._known[team] = (self.clock() + lifetime, client)
            return client

    async def _look_up(self, team: str) -> tuple[AsyncWebClient, float]:
        assert self.store is not None
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team)
        if bot is None or not bot.bot_token:
            raise NotInstalled(team)
        if bot.bot_refresh_token and self.rotator is not None:
            refreshed = await self.rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self.rotation_minutes
            )
            if refreshed is not None:
                await self.store.async_save_bot(refreshed)
                log.info("Slack: the bot token of workspace %s was rotated", team)
                bot = refreshed
        lifetime = TTL
        if bot.bot_token_expires_at is not None:
            left = bot.bot_token_expires_at - time.time() - self.rotation_minutes * 60
            lifetime = max(0.0, min(TTL, left))
        return web_client(bot.bot_token, self.api_url, self.session), lifetime
