"""The Slack message a job was posted in, as a link: chat.getPermalink, once, at delivery.

Invariants:
- Slack gives a message's address only through `chat.getPermalink` (it holds the workspace's
  domain, which the bot does not otherwise know). It is asked once per job, after the video
  was posted, for the job's progress message (the thread the video is in), and saved in the
  job's surface as `data["permalink"]` through `service.save_surface` — the job book's one
  way to write a surface. A job that has one already is not asked again (a retried delivery).
- Only an https address is kept. A refusal or an unreachable Slack changes nothing and is
  logged, never raised: the video is delivered either way, and the gallery then links to the
  channel instead of the message.
"""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.models import Job
from bot.services.interface import BotService

log = logging.getLogger(__name__)

PERMALINK = "permalink"


async def save_permalink(client: AsyncWebClient, service: BotService, job: Job) -> None:
    """Ask Slack for the link to `job`'s progress message and keep it in its surface."""
    channel, ts = job.surface.channel, job.surface.thread
    if not channel or not ts or job.surface.data.get(PERMALINK):
        return
    try:
        answer = await client.chat_getPermalink(channel=channel, message_ts=ts)
    except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
        log.info("job %s: no permalink for its message (%s)", job.id, type(exc).__name__)
        return
    link = str(answer.get(PERMALINK) or "")
    if not link.startswith("https://"):
        return
    fresh = await service.get_job(job.id)
    data = {**fresh.surface.data, PERMALINK: link}
    await service.save_surface(job.id, fresh.surface.model_copy(update={"data": data}))
