"""The wire side of the fake Discord: recorded requests, payload builders, HTTP helpers.

Payloads carry what discord.py 2.7 reads when it parses them (users, guilds, messages);
a field it needs and does not find raises inside the client, so a missing one shows up
as a failing test rather than a silently wrong one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

BOT_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31))
ADMIN_PERMISSIONS = str((1 << 3) | (1 << 5))  # Administrator + Manage Server
MEMBER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 31))
MIB = 1024 * 1024


@dataclass
class RecordedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    at: float
    status: int = 0
    auth: str | None = None


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class InteractionRecord:
    id: str
    token: str
    payload: dict[str, Any]
    dispatched_at: float
    callback: dict[str, Any] | None = None
    callback_at: float | None = None
    original_message_id: str | None = None


def user_payload(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
        "flags": 0,
        "public_flags": 0,
    }


def guild_payload(
    guild_id: str, channel_id: str, owner_id: str, *, premium_tier: int, name: str
) -> dict[str, Any]:
    """GUILD_CREATE data: what discord.py needs to cache a guild with one text channel."""
    return {
        "id": guild_id,
        "name": name,
        "owner_id": owner_id,
        "premium_tier": premium_tier,
        "features": [],
        "emojis": [],
        "stickers": [],
        "member_count": 2,
        "large": False,
        "unavailable": False,
        "joined_at": now_iso(),
        "members": [],
        "voice_states": [],
        "presences": [],
        "threads": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "roles": [
            {
                "id": guild_id,
                "name": "@everyone",
                "permissions": MEMBER_PERMISSIONS,
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "channels": [
            {
                "id": channel_id,
                "type": 0,
                "name": "general",
                "position": 0,
                "guild_id": guild_id,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
            }
        ],
    }


def interaction_payload(
    kind: int,
    application_id: str,
    interaction_id: str,
    guild_id: str | None,
    channel_id: str,
    user: dict[str, Any],
    *,
    admin: bool,
    size_limit: int,
) -> dict[str, Any]:
    """INTERACTION_CREATE data without `data`: who, where, and the upload limit
    (`attachment_size_limit`, which discord.py exposes as `Interaction.filesize_limit`)."""
    token = f"itoken-{interaction_id}"
    payload: dict[str, Any] = {
        "id": interaction_id,
        "application_id": application_id,
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": channel_id,
        "locale": "en-US",
        "app_permissions": BOT_PERMISSIONS,
        "entitlements": [],
        "attachment_size_limit": size_limit,
        "authorizing_integration_owners": {"0": guild_id or "0"},
    }
    if guild_id is not None:
        payload.update(
            guild_id=guild_id,
            guild_locale="en-US",
            context=0,
            channel={
                "id": channel_id,
                "type": 0,
                "guild_id": guild_id,
                "name": "general",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
            },
            member={
                "user": user,
                "roles": [],
                "joined_at": now_iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "nick": None,
                "permissions": ADMIN_PERMISSIONS if admin else MEMBER_PERMISSIONS,
            },
        )
    else:
        payload.update(
            context=1, user=user, channel={"id": channel_id, "type": 1, "recipients": [user]}
        )
    return payload


def message_payload(message_id: str, channel_id: str, author: dict[str, Any]) -> dict[str, Any]:
    """An empty message object as Discord returns it; content is filled in by edits."""
    return {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": "",
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
    }


FAKE_TOKEN = "fake-bot-token.not-a-secret"
DISCORD_EPOCH_MS = 1_420_070_400_000


def walk_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Options with subcommand (group) levels flattened."""
    found = []
    for option in options:
        found.append(option)
        found += walk_options(option.get("options", []))
    return found


def tier_limit(tier: int) -> int:
    return {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}.get(tier, 10 * MIB)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json
    # (aiohttp's json_response adds "; charset=utf-8").
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


async def read_body(request: web.Request) -> tuple[Any, list[RecordedFile]]:
    if request.content_type == "multipart/form-data":
        body: Any = None
        files: list[RecordedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            if part.name == "payload_json":
                body = json.loads(data)
            else:
                files.append(
                    RecordedFile(
                        part.name or "",
                        part.filename,
                        part.headers.get("Content-Type"),
                        bytes(data),
                    )
                )
        return body, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), []
