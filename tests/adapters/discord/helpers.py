"""Small builders for interaction options and waits, shared by the Discord adapter tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.adapters.discord.fake_discord import FakeDiscord, RecordedRequest

ALICE = FakeDiscord.user("400000000000000001", "alice")
BOB = FakeDiscord.user("400000000000000002", "bob")

STRING, INTEGER, BOOLEAN, USER, ATTACHMENT = 3, 4, 5, 6, 11


def opt(name: str, value: Any, kind: int = STRING) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value}


def sora_options(prompt: str, **extra: Any) -> list[dict[str, Any]]:
    kinds = {"duration": INTEGER, "watermark": BOOLEAN, "image": ATTACHMENT}
    return [opt("prompt", prompt)] + [opt(k, v, kinds.get(k, STRING)) for k, v in extra.items()]


def is_upload(req: RecordedRequest) -> bool:
    return req.method == "POST" and bool(req.files) and req.status == 200


def posted_text(req: RecordedRequest) -> str:
    return str((req.json or {}).get("content") or "")


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll `check` until it is true; fail after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s: {check}")
        await asyncio.sleep(0.05)


CAROL = FakeDiscord.user("400000000000000003", "carol")
MANAGER = FakeDiscord.user("400000000000000009", "manager")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [
        str(c.get("custom_id", ""))
        for row in message.get("components", [])
        for c in row.get("components", [])
    ]


def embed_text(message: dict[str, Any]) -> str:
    """Everything an embed shows, as one string (title, description, fields)."""
    parts: list[str] = []
    for embed in message.get("embeds", []):
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)
