"""`SlackAdmins`: the core's `AdminPort` for Slack — where approval requests, decisions and
budget alerts reach the people who hold the budget.

    SLACK_ADMIN_CHANNEL set ──▶ one message in that channel
    otherwise (or the bot may not post there) ──▶ a DM to every `slack:` id in ADMIN_USER_IDS

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
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import admin_render
from bot.domain.models import Balance
from bot.services.alerts import Alert
from bot.services.approvals import Approval
from bot.services.interface import BotService

log = logging.getLogger(__name__)

OpenDm = Callable[[str], Awaitable[str]]


def _error(exc: SlackApiError) -> str:
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "unknown_error"


class SlackAdmins:
    def __init__(self, client: AsyncWebClient, service: BotService, open_dm: OpenDm) -> None:
        self.client = client
        self.service = service
        self.open_dm = open_dm

    @property
    def admin_ids(self) -> list[str]:
        """The Slack user ids in ADMIN_USER_IDS."""
        return self.service.settings.admin_users("slack")

    @property
    def reachable(self) -> bool:
        """Is there anyone to ask (an admin channel, or admins to DM)?"""
        return bool(self.service.settings.slack_admin_channel or self.admin_ids)

    async def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, str]:
        """Post to the admin channel, else DM each admin; returns {channel: ts} of each post."""
        channel = self.service.settings.slack_admin_channel
        if channel:
            try:
                response = await self.client.chat_postMessage(
                    channel=channel, text=text, blocks=blocks
                )
                return {str(response["channel"]): str(response["ts"])}
            except SlackApiError as exc:
                log.warning(
                    "cannot post in SLACK_ADMIN_CHANNEL %s (%s); sending DMs to the admins",
                    channel,
                    _error(exc),
                )
        refs: dict[str, str] = {}
        for admin in self.admin_ids:
            try:
                dm = await self.open_dm(admin)
                response = await self.client.chat_postMessage(channel=dm, text=text, blocks=blocks)
            except SlackApiError as exc:
                log.warning("cannot DM admin %s (%s)", admin, _error(exc))
                continue
            refs[str(response["channel"])] = str(response["ts"])
        if not refs:
            log.warning("no Slack admin could be reached (SLACK_ADMIN_CHANNEL, ADMIN_USER_IDS)")
        return refs

    async def tell(self, user: str, text: str) -> None:
        dm = await self.open_dm(user)
        await self.client.chat_postMessage(channel=dm, text=text)

    # -- AdminPort ------------------------------------------------------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        text, blocks = admin_render.approval_message(approval, balance)
        refs = await self.post(text, blocks)
        if refs:
            await self.service.save_approval_refs(approval.id, refs)

    async def on_approval_decided(self, approval: Approval) -> None:
        text, blocks = admin_render.decided_message(approval)
        for channel, ts in approval.admin_refs.items():
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            except SlackApiError as exc:
                log.warning("approval %s: admin message not updated (%s)", approval.id, _error(exc))
        await self.tell(approval.requester.user, admin_render.requester_note(approval))

    async def on_admin_alert(self, alert: Alert) -> None:
        await self.post(admin_render.alert_text(alert))
