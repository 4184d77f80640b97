"""Approve / Deny on the admins' message: persistent buttons carrying the approval id.

Like the job buttons (views.py) they are `DynamicItem`s registered at start, so a request
posted before a restart is still decided by the new process; nothing is kept in memory.

Invariants:
- The core decides who may decide (`bot.domain.permissions`: ADMIN_USER_IDS, or Manage Server in
  the server the request came from — managing one server gives no say over another's budget)
  and that exactly one decision counts. The adapter passes the clicker with Discord's facts.
- Everyone who clicks gets an ephemeral answer: the decision made, "already approved by X",
  or the refusal. The admins' message itself is updated by the port (admin.py), once, by
  the winner's decision.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord import admin_render, flow
from adapters.discord.buttons import ID, IdButton
from adapters.discord.surface import requester_of
from bot.domain.errors import BotError, JobStateError


async def decide(interaction: discord.Interaction[Any], approval_id: str, approve: bool) -> None:
    flow.track(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    service = flow.service_of(interaction)
    actor = requester_of(interaction)
    try:
        decided = await service.decide_approval(approval_id, actor, approve)
    except JobStateError as err:
        try:
            text = admin_render.already_decided_text(await service.get_approval(approval_id))
        except BotError:
            text = flow.error_text(err)
    except BotError as err:
        text = flow.error_text(err)
    else:
        text = admin_render.decided_ack_text(decided)
    await interaction.followup.send(text, ephemeral=True)


class ApproveButton(IdButton, template=rf"sora:approve:{ID}"):
    ACTION, LABEL, STYLE = "approve", "Approve", discord.ButtonStyle.success

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await decide(interaction, self.item_id, True)


class DenyButton(IdButton, template=rf"sora:deny:{ID}"):
    ACTION, LABEL, STYLE = "deny", "Deny", discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await decide(interaction, self.item_id, False)


def approval_view(approval_id: str, *, decided: bool = False) -> discord.ui.View:
    """Approve and Deny; disabled once the request is decided (or expired)."""
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(approval_id, disabled=decided))
    view.add_item(DenyButton(approval_id, disabled=decided))
    return view


APPROVAL_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (ApproveButton, DenyButton)
