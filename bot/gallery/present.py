"""How a job reads on a gallery page: figures in words, and where in chat it was posted.

Invariants:
- Pure: a job in, text out; nothing is read or decided here.
- The chat place is what the job's surface already knows, never a platform call: Discord
  messages have a stable address (https://discord.com/channels/<guild or @me>/<channel>/
  <message>); Slack gives a message's permalink only through chat.getPermalink, which the Slack
  port asks once at delivery and saves in the surface (`permalink`, an https address on
  slack.com): a Slack job links to that message, else (an older job, Slack refused) to its
  channel (slack.com/app_redirect).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.domain.models import Job, JobStatus, fmt_credits

STATUS_WORDS = {
    JobStatus.PENDING: "waiting to start",
    JobStatus.SUBMITTED: "rendering",
    JobStatus.DELIVERING: "being delivered",
    JobStatus.DELIVERED: "delivered",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}


@dataclass(frozen=True)
class ChatPlace:
    label: str
    url: str | None


def _digits(value: object) -> str | None:
    text = str(value) if value is not None else ""
    return text if text.isdigit() else None


def _slack_id(value: object) -> str | None:
    text = str(value) if value is not None else ""
    return text if text.isalnum() and text.isupper() else None


def _slack_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "slack.com" or host.endswith(".slack.com")


def chat_place(job: Job) -> ChatPlace | None:
    """Where the video was posted, as far as the surface tells; None when it does not."""
    data = job.surface.data
    if job.requester.platform == "discord":
        channel = _digits(data.get("channel_id") or job.surface.channel)
        message = _digits(data.get("bot_message_id") or data.get("message_id"))
        guild = _digits(data.get("guild_id")) or "@me"
        if channel and message:
            return ChatPlace(
                "Open the Discord message",
                f"https://discord.com/channels/{guild}/{channel}/{message}",
            )
        return None
    if job.requester.platform == "slack":
        permalink = str(data.get("permalink") or "")
        if permalink.startswith("https://") and _slack_host(permalink):
            return ChatPlace("Open the Slack message", permalink)
        channel = _slack_id(job.surface.channel)
        team = _slack_id(job.requester.workspace)
        if channel and team:
            return ChatPlace(
                "Open the Slack channel it was posted in",
                f"https://slack.com/app_redirect?team={team}&channel={channel}",
            )
        return None
    return None


def credits_text(job: Job) -> str:
    """What the job cost: its charge once delivered; what EvoLink kept, if anything, of a
    failed or cancelled one (the rest was returned); the credits held while it runs."""
    if job.status == JobStatus.DELIVERED:
        return f"{fmt_credits(job.charge)} credits"
    if job.status.terminal:
        kept = job.charged_uc or 0
        return f"{fmt_credits(kept)} credits (the rest returned)" if kept else "nothing (returned)"
    return f"{fmt_credits(job.reserved)} credits held"


def when_text(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def who_text(job: Job) -> str:
    return job.requester.display_name or job.requester.user


def status_text(job: Job) -> str:
    words = STATUS_WORDS.get(job.status, str(job.status))
    if job.status == JobStatus.PENDING and job.queued:
        place = f" (#{job.queue_position} in line)" if job.queue_position else ""
        return f"queued{place}"
    if job.status == JobStatus.SUBMITTED and job.progress:
        return f"{words}, {job.progress}%"
    return words


def frame_fact(job: Job) -> tuple[str, str]:
    """The picture's shape and its label (`VideoRequest.frame`)."""
    return job.request.frame


def options_of(job: Job) -> list[tuple[str, str]]:
    """The request's options as (name, value) rows for the video page."""
    r = job.request
    found: list[tuple[str, str]] = [
        ("Model", r.model),
        ("Duration", f"{r.duration} s"),
        frame_fact(job),
    ]
    if r.quality:
        found.append(("Quality", r.quality))
    if r.audio is not None:
        found.append(("Audio", "on" if r.audio else "off"))
    if r.remove_watermark is not None:
        found.append(("Watermark removed", "yes" if r.remove_watermark else "no"))
    if r.image_urls:
        found.append(("Images", str(len(r.image_urls))))
    if r.base_video_task_id:
        found.append(("Remix of task", r.base_video_task_id))
    return found
