"""What the Discord adapter stores with a job (`Surface.data`) so any later event can reach the
user — including after a restart, when no `discord.Interaction` object exists any more.

Invariants:
- While the interaction token lives (15 minutes, minus a safety margin) and Discord has not
  refused it, the job's messages go through the interaction webhook (`app_id` + `token`).
- After that (`token_dead`, or past `token_expires_at`), they go through the bot token in
  `channel_id`; the bot's own status message is `bot_message_id` once posted.
- `filesize_limit` is the real upload limit Discord gave the interaction
  (`Interaction.filesize_limit`: guild boosts included).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import discord

from bot.domain.models import Requester, Surface

PLATFORM = "discord"
TOKEN_MARGIN = dt.timedelta(seconds=60)
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024


def workspace_of(interaction: discord.Interaction[Any]) -> str:
    """The guild id, or `dm` for direct messages and user-installed contexts."""
    return str(interaction.guild_id) if interaction.guild_id is not None else "dm"


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    """Discord user in a guild, or in `dm` for direct messages and user-installed contexts.

    In a guild the member's role ids (with @everyone, the guild id) go along for role
    allowances; discord.py resolves them against its guild cache (the `guilds` intent).
    `workspace_admin` is the fact "has Manage Server in this guild", as Discord computed it
    for this interaction (never in a DM); what it allows is the core's decision."""
    workspace = workspace_of(interaction)
    user = interaction.user
    roles: tuple[str, ...] = ()
    if interaction.guild_id is not None and isinstance(user, discord.Member):
        roles = tuple(str(role.id) for role in user.roles)
    return Requester(
        platform=PLATFORM,
        workspace=workspace,
        user=str(user.id),
        display_name=user.display_name,
        roles=roles,
        workspace_admin=interaction.guild_id is not None and interaction.permissions.manage_guild,
    )


@dataclass
class DiscordSurface:
    channel_id: int
    user_id: int
    app_id: int | None = None
    token: str | None = None
    token_expires_at: dt.datetime | None = None
    message_id: int | None = None
    filesize_limit: int = DEFAULT_FILESIZE_LIMIT
    guild_id: int | None = None
    token_dead: bool = False
    bot_message_id: int | None = None

    @classmethod
    def from_interaction(
        cls, interaction: discord.Interaction[Any], message_id: int | None
    ) -> DiscordSurface:
        assert interaction.channel_id is not None  # every command interaction has a channel
        return cls(
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            app_id=interaction.application_id,
            token=interaction.token,
            token_expires_at=interaction.expires_at,
            message_id=message_id,
            filesize_limit=interaction.filesize_limit or DEFAULT_FILESIZE_LIMIT,
            guild_id=interaction.guild_id,
        )

    @classmethod
    def load(cls, surface: Surface) -> DiscordSurface:
        d = surface.data
        expires = d.get("token_expires_at")
        return cls(
            channel_id=int(surface.channel or d["channel_id"]),
            user_id=int(d["user_id"]),
            app_id=_int(d.get("app_id")),
            token=d.get("token"),
            token_expires_at=dt.datetime.fromisoformat(expires) if expires else None,
            message_id=_int(d.get("message_id")),
            filesize_limit=int(d.get("filesize_limit") or DEFAULT_FILESIZE_LIMIT),
            guild_id=_int(d.get("guild_id")),
            token_dead=bool(d.get("token_dead", False)),
            bot_message_id=_int(d.get("bot_message_id")),
        )

    def dump(self) -> Surface:
        return Surface(
            channel=str(self.channel_id),
            data={
                "channel_id": str(self.channel_id),
                "user_id": str(self.user_id),
                "app_id": _str(self.app_id),
                "token": self.token,
                "token_expires_at": self.token_expires_at.isoformat()
                if self.token_expires_at
                else None,
                "message_id": _str(self.message_id),
                "filesize_limit": self.filesize_limit,
                "guild_id": _str(self.guild_id),
                "token_dead": self.token_dead,
                "bot_message_id": _str(self.bot_message_id),
            },
        )

    def webhook_usable(self, now: dt.datetime | None = None) -> bool:
        if self.token_dead or self.token is None or self.app_id is None:
            return False
        if self.token_expires_at is None:
            return True
        now = now or dt.datetime.now(dt.UTC)
        return now < self.token_expires_at - TOKEN_MARGIN

    @property
    def mention(self) -> str:
        return f"<@{self.user_id}>"


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _str(value: int | None) -> str | None:
    # Snowflakes are stored as strings: JSON readers in other languages lose 64-bit ints.
    return None if value is None else str(value)
