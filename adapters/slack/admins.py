"""`SlackAdmins`: the core's `AdminPort` for Slack — where approval requests, decisions and
budget alerts reach the people who hold the budget.

    the workspace's admin channel (its setting, else SLACK_ADMIN_CHANNEL) ──▶ one message there
    otherwise (or the bot may not post there) ──▶ a DM to every `slack:` id in ADMIN_USER_IDS

Everything is posted with the token of the workspace concerned (the approval's requester's, the
alert's): `clients.for_team`. A workspace without an installation gets nothing (logged).

Invariants:
- Where each approval message went (channel → ts, one per DM) is saved with the approval
  (`save_approval_refs`), so the decision replaces the buttons everywhere, even after a
  restart; a message that cannot be updated any more is logged and skipped.
- The requester hears about the decision in a DM: it can come long after they asked, and a
  DM survives where an ephemeral note would be gone. An approved job then talks through the
  normal progress message in the channel it was asked from.
- Nothing here decides anything: the core has already recorded the decision when
  `on_approval_decided` is called. Failures to notify are logged by the core and never undo it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack import admin_render
from adapters.slack.clients import ClientBook, NotInstalled
from bot.domain.models import Balance
from bot.services.alerts import Alert
from bot.services.approvals import Approval
from bot.services.interface import BotService

log = logging.getLogger(__name__)

#: A DM channel with (team, user).
OpenDm = Callable[[str, str], Awaitable[str]]


def _error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "unknown_error"


class SlackAdmins:
    def __init__(self, clients: ClientBook, service: BotService, open_dm: OpenDm) -> None:
        self.clients = clients
        self.service = service
        self.open_dm = open_dm

    @property
    def admin_ids(self) -> list[str]:
        """The Slack user ids in ADMIN_USER_IDS."""
        return self.service.settings.admin_users("slack")

    def reachable(self, team: str) -> bool:
        """Is there anyone to ask in `team` (an admin channel, or admins to DM)?"""
        return bool(self.service.admin_channel("slack", team) or self.admin_ids)

    async def post(
        self, team: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> dict[str, str]:
        """Post to the workspace's admin channel, else DM each admin; returns {channel: ts}
        of each post."""
        client = await self.clients.for_team(team)
        channel = self.service.admin_channel("slack", team)
        if channel:
            try:
                response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
                return {str(response["channel"]): str(response["ts"])}
            except SlackApiError as exc:
                log.warning(
                    "cannot post in the admin channel %s (%s); sending DMs to the admins",
                    channel,
                    _error(exc),
                )
        refs: dict[str, str] = {}
        for admin in self.admin_ids:
            try:
                dm = await self.open_dm(team, admin)
                response = await client.chat_postMessage(channel=dm, text=text, blocks=blocks)
            except SlackApiError as exc:
                log.warning("cannot DM admin %s (%s)", admin, _error(exc))
                continue
            refs[str(response["channel"])] = str(response["ts"])
        if not refs:
            log.warning("no Slack admin could be reached (SLACK_ADMIN_CHANNEL, ADMIN_USER_IDS)")
        return refs

    async def tell(self, team: str, user: str, text: str) -> None:
        dm = await self.open_dm(team, user)
        client = await self.clients.for_team(team)
        await client.chat_postMessage(channel=dm, text=text)

    # -- AdminPort ------------------------------------------------------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        text, blocks = admin_render.approval_message(approval, balance)
        try:
            refs = await self.post(approval.requester.workspace, text, blocks)
        except NotInstalled as exc:
            log.warning("approval %s: %s; no admin was asked", approval.id, exc)
            return
        if refs:
            await self.service.save_approval_refs(approval.id, refs)

    async def on_approval_decided(self, approval: Approval) -> None:
        text, blocks = admin_render.decided_message(approval)
        team = approval.requester.workspace
        try:
            client = await self.clients.for_team(team)
            for channel, ts in approval.admin_refs.items():
                try:
                    await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                except SlackApiError as exc:
                    log.warning(
                        "approval %s: admin message not updated (%s)", approval.id, _error(exc)
                    )
            await self.tell(team, approval.requester.user, admin_render.requester_note(approval))
        except NotInstalled as exc:
            log.warning("approval %s: %s; the decision is not posted", approval.id, exc)

    async def on_admin_alert(self, alert: Alert) -> None:
        try:
            await self.post(alert.workspace, admin_render.alert_text(alert))
        except NotInstalled as exc:
            log.warning("budget alert: %s; not posted", exc)
