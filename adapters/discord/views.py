"""Persistent job buttons (Cancel, Again, Remix) and the remix modal.

Buttons are `DynamicItem`s: the job id lives in the `custom_id` (`sora:cancel:<job id>`), and
the item classes are registered on the client in `setup_hook`, so a button on a message posted
before a restart still works — nothing about it is kept in memory. The admins' Approve / Deny
buttons (approval_views.py) are registered with them.

Invariants:
- A button callback answers Discord within 3 s (a defer, or the modal for Remix) before it
  awaits anything in the store.
- Who may press what is decided by the core (`service.cancel` / `again` / `remix` raise
  PermissionDenied); a refusal is an ephemeral message to the presser only.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord import flow
from adapters.discord.approval_views import APPROVAL_ITEMS
from adapters.discord.buttons import ID, IdButton
from bot.domain.catalog import Catalog
from bot.domain.models import Job, JobStatus

REMIX_PROMPT_MAX = 1000


class CancelButton(IdButton, template=rf"sora:cancel:{ID}"):
    ACTION, LABEL, STYLE = "cancel", "Cancel", discord.ButtonStyle.danger

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await flow.cancel_job(interaction, self.item_id)


class AgainButton(IdButton, template=rf"sora:again:{ID}"):
    ACTION, LABEL, STYLE, EMOJI = "again", "Again", discord.ButtonStyle.secondary, "🔁"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        await flow.again_job(interaction, self.item_id)


class RemixButton(IdButton, template=rf"sora:remix:{ID}"):
    ACTION, LABEL, STYLE, EMOJI = "remix", "Remix", discord.ButtonStyle.primary, "🎨"

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        # A modal must be the first response: no defer, no store access before it.
        await interaction.response.send_modal(RemixModal(self.item_id))


class RemixModal(discord.ui.Modal):
    """Asks what to change; the custom_id carries the job id, so the submit needs no memory."""

    change: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="What should change?",
        style=discord.TextStyle.paragraph,
        placeholder="make it night time, with neon reflections",
        max_length=REMIX_PROMPT_MAX,
        custom_id="change",
    )

    def __init__(self, job_id: str) -> None:
        super().__init__(
            title="Remix this video", custom_id=f"sora:remix-modal:{job_id}", timeout=None
        )
        self.job_id = job_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        await flow.remix_job(interaction, self.job_id, self.change.value)

    async def on_error(  # type: ignore[override]  # discord.py's Modal drops `item`
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await flow.report_unexpected(interaction, error)


def job_view(job: Job, catalog: Catalog) -> discord.ui.View:
    """The buttons that fit the job's state: Cancel while the core says it can be cancelled
    (`Job.cancellable`: not yet at EvoLink); none while EvoLink renders it; Again (and Remix)
    after."""
    view = discord.ui.View(timeout=None)
    if not job.status.terminal:
        if job.cancellable:
            view.add_item(CancelButton(job.id))
        return view
    view.add_item(AgainButton(job.id))
    if job.status == JobStatus.DELIVERED and catalog.remix_model_for(job.request.model):
        view.add_item(RemixButton(job.id))
    return view


def link_view(url: str, label: str = "Open video") -> discord.ui.View | None:
    """A link button, when the URL fits Discord's 512-character limit."""
    if len(url) > 512:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label=label, style=discord.ButtonStyle.link, url=url))
    return view


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    CancelButton,
    AgainButton,
    RemixButton,
    *APPROVAL_ITEMS,  # Approve / Deny on the admins' messages
)
