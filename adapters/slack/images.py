"""Slack-hosted images → a public, signed `/media` link that EvoLink can read.

Slack file URLs are private (they need the bot token), so EvoLink cannot fetch them. The bot
downloads the file with its token (`files.info` → `url_private_download`, `Authorization:
Bearer`), stores it in MEDIA_DIR and hands EvoLink the signed `/media` link.

Two steps, so a modal's request is built (and validated) once, before its ack: `plan_image`
(pure) names the file and signs its link, then `rehost_image` downloads the file there, after
the ack and before the request is submitted.

Invariants:
- Without PUBLIC_BASE_URL there is no public link: `plan_image` says so in plain words
  (`InputError` on the image field) before anything is downloaded.
- At most `IMAGE_MAX_BYTES` are read; only jpg, png and webp are kept; a login page served
  instead of the file (token without `files:read`) is refused, never stored as an image.
- The workspace's bot token (the client `rehost_image` is given: `clients.for_team`) goes only
  to Slack's own file URL, in a header; it is never logged.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.modal import IMAGE_MAX_BYTES, IMAGE_TYPES
from bot.domain.errors import InputError
from bot.services.interface import BotService

NEEDS_PUBLIC_URL = (
    "Image input from Slack needs PUBLIC_BASE_URL: the bot must re-host the image at a public "
    "address EvoLink can read. Ask the operator to set it, or leave the image out."
)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
_TIMEOUT = aiohttp.ClientTimeout(total=30)


def require_public_base_url(service: BotService) -> None:
    if not service.settings.public_base_url:
        raise InputError(NEEDS_PUBLIC_URL, field="image_url")


def first_image(files: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The first jpg/png/webp file of a message, if any."""
    for file in files or []:
        if str(file.get("mimetype", "")) in IMAGE_TYPES:
            return file
    return None


@dataclass(frozen=True)
class PlannedImage:
    """A Slack file and where the bot will host it: `path` in MEDIA_DIR, `url` its signed link."""

    file_id: str
    path: Path
    url: str


def plan_image(service: BotService, file_id: str) -> PlannedImage:
    """Where Slack file `file_id` will be stored and its signed /media link (no I/O)."""
    require_public_base_url(service)
    # Served as bytes whatever the suffix (bot/web.py); its type is checked at download.
    path = Path(service.media_dir) / f"slack-{_SAFE_ID.sub('', file_id)}.img"
    hosted = service.host_file(path, path.name)
    if hosted is None:
        raise InputError(NEEDS_PUBLIC_URL, field="image_url")
    return PlannedImage(file_id=file_id, path=path, url=hosted)


async def rehost_image(client: AsyncWebClient, planned: PlannedImage) -> None:
    """Download the Slack file with the bot token into `planned.path`."""
    try:
        info = await client.files_info(file=planned.file_id)
    except SlackApiError:
        raise InputError(
            "I could not read that image from Slack (is the app allowed to read files?).",
            field="image_url",
        ) from None
    file: dict[str, Any] = info["file"]
    if str(file.get("mimetype", "")) not in IMAGE_TYPES:
        raise InputError("The image must be a jpg, png or webp file.", field="image_url")
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise InputError("Slack gave no download link for that image.", field="image_url")
    data = await _download(str(url), str(client.token))
    await asyncio.to_thread(_save, planned.path, data)


async def _download(url: str, token: str) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.get(url, headers=headers) as resp,
        ):
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
            if resp.status != 200 or ctype == "text/html":
                raise InputError(
                    "Slack did not hand over the image (the app needs the files:read scope).",
                    field="image_url",
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > IMAGE_MAX_BYTES:
                    raise InputError("The image must be at most 10 MB.", field="image_url")
                chunks.append(chunk)
            return b"".join(chunks)
    except aiohttp.ClientError:
        raise InputError(
            "The image could not be downloaded from Slack; try again.", field="image_url"
        ) from None


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
