"""The Discord side of the core's AdminPort: approval requests, decisions and alerts.

Admins are reached in `DISCORD_ADMIN_CHANNEL` (a channel id) when it is set, else by DM to
each Discord admin in ADMIN_USER_IDS (`discord:<id>`). Where each request went is saved with
the approval (`admin_refs`: channel id → message id), so the decision can update those
messages — after a restart too.

Invariants:
- Best effort per target: one admin's closed DMs do not stop the others; the core never
  undoes a decision because a notification failed.
- A request nobody could be shown to raises (the core logs it); the requester was offered
  the button only when someone is configured (asking.py).
- The requester hears of the decision in the channel where they asked; if the bot cannot
  post there, by DM.
- Mentions in admin messages never ping anyone (`AllowedMentions.none()`); the requester's
  note pings the requester only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord import admin_render
from adapters.discord.approval_views import approval_view
from adapters.discord.surface import PLATFORM, DiscordSurface

if TYPE_CHECKING:
    from bot.domain.models import Balance
    from bot.services.alerts import Alert
    from bot.services.approvals import Approval
    from bot.services.interface import BotService

log = logging.getLogger(__name__)

QUIET = discord.AllowedMentions.none()


class AdminMessages:
    def __init__(self, client: discord.Client, service: BotService) -> None:
        self.client = client
        self.service = service
        # The guild cache lives on the gateway shards (the runtime points this at theirs);
        # a guild on another replica's shard is named by id.
        self.guild_lookup: Callable[[int], discord.Guild | None] = client.get_guild

    # -- where admins are --------------------------------------------------------------------

    def admin_channel_id(self, guild: str | None = None) -> int | None:
        """The guild's admin channel (its setting, else DISCORD_ADMIN_CHANNEL)."""
        if guild is None:
            channel = self.service.settings.discord_admin_channel
        else:
            channel = self.service.admin_channel(PLATFORM, guild)
        if channel is None:
            return None
        if not channel.isdigit():
            log.error("DISCORD_ADMIN_CHANNEL must be a channel id; using DMs to admins instead")
            return None
        return int(channel)

    def admin_user_ids(self) -> list[int]:
        """The Discord users in ADMIN_USER_IDS (ids that are snowflakes)."""
        return [int(u) for u in self.service.settings.admin_users(PLATFORM) if u.isdigit()]

    async def _targets(self, guild: str | None) -> list[discord.abc.Messageable]:
        channel_id = self.admin_channel_id(guild)
        if channel_id is not None:
            return [self.client.get_partial_messageable(channel_id)]
        targets: list[discord.abc.Messageable] = []
        for user_id in self.admin_user_ids():
            try:
                targets.append(await self.client.create_dm(discord.Object(id=user_id)))
            except discord.HTTPException as exc:
                log.warning("cannot open a DM with admin %s (HTTP %s)", user_id, exc.status)
        return targets

    async def _broadcast(
        self, make: Callable[[], dict[str, Any]], guild: str | None = None
    ) -> dict[str, str]:
        """Send to every admin target of `guild`; returns channel id → message id of what
        arrived."""
        sent: dict[str, str] = {}
        for target in await self._targets(guild):
            try:
                message = await target.send(allowed_mentions=QUIET, **make())
            except discord.HTTPException as exc:
                log.warning("an admin message was refused (HTTP %s, code %s)", exc.status, exc.code)
                continue
            sent[str(message.channel.id)] = str(message.id)
        return sent

    def where(self, workspace: str) -> str:
        """The server's name as admins know it (the admin channel may serve several)."""
        if workspace == "dm":
            return "a DM"
        guild = self.guild_lookup(int(workspace)) if workspace.isdigit() else None
        return f"**{guild.name}**" if guild is not None else f"server `{workspace}`"

    # -- AdminPort ---------------------------------------------------------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        embed = admin_render.approval_embed(
            approval, balance, where=self.where(approval.requester.workspace)
        )
        refs = await self._broadcast(
            lambda: {"embed": embed, "view": approval_view(approval.id)},
            approval.requester.workspace,
        )
        if not refs:
            raise RuntimeError(f"approval {approval.id}: no admin could be reached on Discord")
        await self.service.save_approval_refs(approval.id, refs)

    async def on_approval_decided(self, approval: Approval) -> None:
        await self._update_admin_messages(approval)
        await self._tell_requester(approval)

    async def on_admin_alert(self, alert: Alert) -> None:
        text = admin_render.alert_text(alert, where=self.where(alert.workspace))
        if not await self._broadcast(lambda: {"content": text}, alert.workspace):
            log.warning("a budget alert reached no admin on Discord: %s", alert.text)

    # -- after a decision --------------------------------------------------------------------

    async def _update_admin_messages(self, approval: Approval) -> None:
        """Show the decision on every copy of the request, with the buttons disabled."""
        for channel_id, message_id in approval.admin_refs.items():
            if not (channel_id.isdigit() and message_id.isdigit()):
                continue
            channel = self.client.get_partial_messageable(int(channel_id))
            partial = channel.get_partial_message(int(message_id))
            try:
                before = await partial.fetch()
                embed = admin_render.decided_embed(
                    before.embeds[0] if before.embeds else None, approval
                )
                await partial.edit(
                    embed=embed,
                    view=approval_view(approval.id, decided=True),
                    allowed_mentions=QUIET,
                )
            except discord.HTTPException as exc:
                log.warning(
                    "approval %s: admin message %s not updated (HTTP %s)",
                    approval.id,
                    message_id,
                    exc.status,
                )

    async def _tell_requester(self, approval: Approval) -> None:
        text = admin_render.requester_note(approval)
        user_id = int(approval.requester.user)
        mentions = discord.AllowedMentions(users=[discord.Object(id=user_id)])
        try:
            surface = DiscordSurface.load(approval.surface)
            channel = self.client.get_partial_messageable(surface.channel_id)
            await channel.send(text, allowed_mentions=mentions)
            return
        except (discord.HTTPException, KeyError, ValueError) as exc:
            log.info("approval %s: cannot post in the requester's channel (%r)", approval.id, exc)
        dm = await self.client.create_dm(discord.Object(id=user_id))
        await dm.send(text, allowed_mentions=mentions)
