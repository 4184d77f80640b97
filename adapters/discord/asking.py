"""The "Ask an admin" offer on a budget refusal.

The refusal is ephemeral and carries a non-persistent `View`: the refused request lives in this
process's memory for `ASK_TIMEOUT` seconds (the text says so), and nothing is stored unless the
user presses the button — asking is the user's choice. After a restart, or after the timeout,
the button is gone and the user simply runs the command again.

Invariants:
- One press asks once: the view stops before the core is called, and a second press (a
  double click racing the first) is answered without asking again.
- The approval's surface has no interaction token (a decision may come after the token's
  15 minutes): the decision and the approved job's messages go through the bot token in the
  channel where the user asked (DMs as a fallback, see admin.py).
- The button is offered only when someone can be asked: an admin channel or Discord admins
  in ADMIN_USER_IDS.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord import admin_render
from adapters.discord.surface import PLATFORM, DiscordSurface
from bot.domain.errors import BotError, BudgetError
from bot.domain.models import Requester, VideoRequest

if TYPE_CHECKING:
    from bot.services.interface import BotService

log = logging.getLogger(__name__)

ASK_TIMEOUT = 600.0  # seconds the refused request is kept in memory for the button
RequestFor = Callable[[], Awaitable[VideoRequest]]


def admins_reachable(service: BotService, guild: str) -> bool:
    """Someone on Discord can be asked: the guild's admin channel (its setting, else
    DISCORD_ADMIN_CHANNEL), or Discord users in ADMIN_USER_IDS."""
    return bool(service.admin_channel(PLATFORM, guild) or service.settings.admin_users(PLATFORM))


def ask_surface(interaction: discord.Interaction[Any]) -> DiscordSurface:
    """Where the decision and the approved job go: the same channel, via the bot token."""
    surface = DiscordSurface.from_interaction(interaction, None)
    surface.app_id = surface.token = surface.token_expires_at = None
    return surface


class AskAdminView(discord.ui.View):
    def __init__(
        self,
        service: BotService,
        requester: Requester,
        request_for: RequestFor,
        surface: DiscordSurface,
    ) -> None:
        super().__init__(timeout=ASK_TIMEOUT)
        self.service = service
        self.requester = requester
        self.request_for = request_for
        self.surface = surface
        self.asked = False
        self.message: discord.WebhookMessage | None = None

    @discord.ui.button(label="Ask an admin", style=discord.ButtonStyle.primary, emoji="🙋")
    async def ask(
        self, interaction: discord.Interaction[Any], _button: discord.ui.Button[AskAdminView]
    ) -> None:
        if str(interaction.user.id) != self.requester.user:
            await interaction.response.send_message(
                "Only the person who asked can do that.", ephemeral=True
            )
            return
        if self.asked:
            await interaction.response.send_message(
                "The admins were already asked.", ephemeral=True
            )
            return
        self.asked = True
        self.stop()
        await interaction.response.defer()  # update the refusal in place, once asked
        try:
            request = await self.request_for()
            approval = await self.service.ask_admin(self.requester, request, self.surface.dump())
        except BotError as err:
            await interaction.edit_original_response(content=str(err)[:2000], view=None)
            return
        # The admins' message is saved with the approval once it was posted somewhere.
        reached = bool((await self.service.get_approval(approval.id)).admin_refs)
        await interaction.edit_original_response(
            content=admin_render.asked_text(approval, reached=reached), view=None
        )

    async def on_timeout(self) -> None:
        if self.message is None or self.asked:
            return
        with contextlib.suppress(discord.HTTPException):
            await self.message.edit(
                content=self.message.content + "\n*(The button has expired: run the command "
                "again to ask.)*",
                view=None,
            )

    async def on_error(
        self,
        interaction: discord.Interaction[Any],
        error: Exception,
        _item: discord.ui.Item[Any],
        /,
    ) -> None:
        log.error("asking an admin failed", exc_info=error)
        text = "Something went wrong on our side. Please try again in a moment."
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)


async def offer_ask(
    interaction: discord.Interaction[Any],
    refusal: BudgetError,
    requester: Requester,
    request_for: RequestFor,
) -> bool:
    """Send the refusal with the "Ask an admin" button; False when nobody can be asked."""
    service: BotService = interaction.client.service
    if not admins_reachable(service, requester.workspace):
        return False
    view = AskAdminView(service, requester, request_for, ask_surface(interaction))
    text = admin_render.ask_offer_text(refusal, int(ASK_TIMEOUT // 60))
    view.message = await interaction.followup.send(text, view=view, ephemeral=True, wait=True)
    return True
