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

import re
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord import flow
from adapters.discord.approval_views import APPROVAL_ITEMS
from bot.catalog import Catalog
from bot.models import Job, JobStatus

if TYPE_CHECKING:
    from typing import Self

JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]{1,80})"
REMIX_PROMPT_MAX = 1000


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sora:cancel:{JOB_ID}"
):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"sora:cancel:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await flow.cancel_job(interaction, self.job_id)
        except Exception as exc:
            await flow.report_unexpected(interaction, exc)


class AgainButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sora:again:{JOB_ID}"):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Again",
                style=discord.ButtonStyle.secondary,
                emoji="🔁",
                custom_id=f"sora:again:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await flow.again_job(interaction, self.job_id)
        except Exception as exc:
            await flow.report_unexpected(interaction, exc)


class RemixButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=rf"sora:remix:{JOB_ID}"):
    def __init__(self, job_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Remix",
                style=discord.ButtonStyle.primary,
                emoji="🎨",
                custom_id=f"sora:remix:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["job_id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        # A modal must be the first response: no defer, no store access before it.
        await interaction.response.send_modal(RemixModal(self.job_id))


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
    """The buttons that fit the job's state: Cancel while running; Again (and Remix) after."""
    view = discord.ui.View(timeout=None)
    if not job.status.terminal:
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
