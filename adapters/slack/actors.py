"""The facts about a Slack actor that the core's permission rules need, read from Slack.

`workspace_admin` — "this person administers the workspace the event came from" — is Slack's
own `is_admin` / `is_owner` in `users.info`. What it allows is decided by `bot.domain.permissions`,
never here.

Invariants:
- The fact is asked for only where it can matter (cancel, admin commands, Approve / Deny, the
  App Home) and kept for `TTL` seconds per (workspace, user), so a burst of clicks is one call.
- Anything short of a clear yes is no: a refused or failed `users.info` (e.g. the app lacks
  the `users:read` scope), a guest, or a user Slack places in another workspace (Slack
  Connect) is not a workspace admin. ADMIN_USER_IDS still works without the scope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.clients import ClientBook, NotInstalled
from bot.domain.models import Requester

log = logging.getLogger(__name__)

TTL = 60.0


class SlackActors:
    def __init__(
        self,
        clients: ClientBook | AsyncWebClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A bare client (a listener's own, already the event's workspace) serves as a book.
        self.clients = clients if isinstance(clients, ClientBook) else ClientBook.single(clients)
        self.clock = clock
        self._known: dict[tuple[str, str], tuple[float, bool]] = {}

    async def with_facts(self, requester: Requester) -> Requester:
        """`requester` with `workspace_admin` as Slack says it for their workspace."""
        admin = await self.is_workspace_admin(requester)
        return requester.model_copy(update={"workspace_admin": admin})

    async def is_workspace_admin(self, requester: Requester) -> bool:
        key = (requester.workspace, requester.user)
        now = self.clock()
        known = self._known.get(key)
        if known is not None and known[0] > now:
            return known[1]
        admin = await self._ask_slack(requester)
        self._known[key] = (now + TTL, admin)
        return admin

    async def _ask_slack(self, requester: Requester) -> bool:
        try:
            client = await self.clients.for_team(requester.workspace)
            response = await client.users_info(user=requester.user)
        except NotInstalled as exc:
            log.warning("users.info %s: %s; not a workspace admin", requester.user, exc)
            return False
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            log.warning("users.info %s failed (%s): not a workspace admin", requester.user, error)
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("users.info %s unreachable (%s)", requester.user, type(exc).__name__)
            return False
        user: Any = response.get("user")
        if not isinstance(user, dict):
            return False
        if user.get("team_id") not in (None, requester.workspace):
            return False  # someone from another workspace (Slack Connect)
        if user.get("is_restricted") or user.get("is_ultra_restricted"):
            return False
        return bool(user.get("is_admin") or user.get("is_owner"))
