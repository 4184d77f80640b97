"""The shape every persistent button here shares: a `DynamicItem` whose `custom_id` is
`sora:<action>:<id>`, rebuilt from that id after a restart (no memory needed).

Subclasses set ACTION, LABEL, STYLE (and EMOJI) and implement `pressed`; the template passed
to the class must capture the id as `(?P<id>…)`. An unexpected error in `pressed` is reported
to the presser instead of being lost.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from adapters.discord import flow

if TYPE_CHECKING:
    from typing import Self

ID = r"(?P<id>[A-Za-z0-9_-]{1,80})"


class IdButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"sora:base:(?P<id>\w+)"):
    ACTION: ClassVar[str] = "base"
    LABEL: ClassVar[str] = ""
    STYLE: ClassVar[discord.ButtonStyle] = discord.ButtonStyle.secondary
    EMOJI: ClassVar[str | None] = None

    def __init__(self, item_id: str, *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.LABEL,
                style=self.STYLE,
                emoji=self.EMOJI,
                custom_id=f"sora:{self.ACTION}:{item_id}",
                disabled=disabled,
            )
        )
        self.item_id = item_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.pressed(interaction)
        except Exception as exc:
            await flow.report_unexpected(interaction, exc)

    async def pressed(self, interaction: discord.Interaction[Any]) -> None:
        raise RuntimeError(f"{type(self).__name__} does not say what pressing it does")
