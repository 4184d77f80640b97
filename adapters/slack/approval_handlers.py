"""Bolt listeners for asking an admin and deciding: the "Ask an admin", Approve and Deny buttons.

    refusal (ephemeral) ─[Ask an admin]─▶ service.ask_admin ─▶ admins' message (SlackAdmins)
    admins' message / App Home ─[Approve|Deny]─▶ service.decide_approval ─▶ on_approval_decided

Invariants:
- Every listener acknowledges at once and works in a spawned task.
- "Ask an admin" rebuilds the request from the button through `SoraService.build`, i.e.
  `validate_request`, the same validation as typing it (a value pointing the image at an
  internal host is refused before anything is stored); the price is the catalog's quote.
  The refusal is replaced by a note, so the button cannot be pressed twice by accident.
- Approve/Deny are decided by the core (`bot.domain.permissions`: ADMIN_USER_IDS, or an admin or
  owner of the request's workspace, a fact read by `SlackActors`); exactly one decision
  counts. A refused click (not an admin, already decided, expired) gets a private note naming
  who decided first; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from adapters.slack import admin_render
from adapters.slack.handlers import Spawn, requester_of
from adapters.slack.port import SlackPort
from bot.domain.errors import BotError
from bot.domain.models import Requester, Surface
from bot.services.interface import BotService

RefreshHome = Callable[[Requester], Awaitable[None]]


class ApprovalHandlers:
    def __init__(
        self, service: BotService, port: SlackPort, spawn: Spawn, refresh_home: RefreshHome
    ) -> None:
        self.service = service
        self.port = port
        self.spawn = spawn
        self.refresh_home = refresh_home

    def register(self, app: AsyncApp) -> None:
        app.action(admin_render.ACTION_ASK)(self.on_ask)
        app.action(admin_render.ACTION_APPROVE)(self.on_approve)
        app.action(admin_render.ACTION_DENY)(self.on_deny)

    async def note(self, body: dict[str, Any], respond: AsyncRespond, text: str) -> None:
        """A private note to whoever clicked: via response_url (messages), else a DM (Home)."""
        if body.get("response_url"):
            await respond(text=text, response_type="ephemeral", replace_original=False)
            return
        actor = requester_of(body)
        await self.port.admins.tell(actor.workspace, actor.user, text)

    # -- Ask an admin ---------------------------------------------------------------------

    async def on_ask(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._ask(body, respond))

    async def _ask(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        actor = requester_of(body)
        try:
            asked = admin_render.read_ask_value(str(body["actions"][0].get("value") or ""))
            # The value may have been edited: validated like a typed request (image host too).
            request = self.service.build(asked.options)
            surface = Surface(channel=asked.channel, data={"team": actor.workspace})
            approval = await self.service.ask_admin(actor, request, surface)
        except BotError as err:
            await self.note(body, respond, f":warning: {err}")
            return
        if body.get("response_url"):
            await respond(text=admin_render.asked_note(approval), replace_original=True)
        else:
            await self.port.admins.tell(
                actor.workspace, actor.user, admin_render.asked_note(approval)
            )

    # -- Approve / Deny -------------------------------------------------------------------

    async def on_approve(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._decide(body, respond, approve=True))

    async def on_deny(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._decide(body, respond, approve=False))

    async def _decide(self, body: dict[str, Any], respond: AsyncRespond, *, approve: bool) -> None:
        actor = await self.port.actors.with_facts(requester_of(body))
        approval_id = str(body["actions"][0].get("value") or "")
        try:
            # On success the core calls `on_approval_decided`: the admins' messages lose their
            # buttons and the requester is told.
            await self.service.decide_approval(approval_id, actor, approve)
        except BotError as err:
            await self.note(body, respond, ":warning: " + admin_render.readable_refusal(str(err)))
        if (body.get("view") or {}).get("type") == "home":
            # Clicked in the App Home: show the list without the request just decided.
            await self.refresh_home(actor)
