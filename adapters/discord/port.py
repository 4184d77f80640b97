"""DiscordPort: the core's job events rendered as Discord messages (and, through admin.py,
the AdminPort: approval requests, decisions and budget alerts).

Each job has one status message (an embed with a progress bar and the job's buttons) that is
edited in place, and the finished video arrives as a new message: the MP4 as an attachment
when it fits the interaction's real upload limit, else the bot's hosted `/media` link with a
link button.

Invariants:
- Status edits of one job are serialised (a per-job lock) and render the newest state, so a
  slow edit can never put an older state over a newer one; an edit that would show what is
  already shown is not sent.
- Messages go through the interaction webhook while its token lives; after 15 minutes, or as
  soon as Discord refuses the token (50027 Invalid Webhook Token, 10015 Unknown Webhook), they
  go through the bot token in the same channel, and the surface remembers that choice.
- Balances shown for a job are its owner's with the Discord roles stored with the job (role
  allowances): the port keeps no roles of its own.
- A video Discord refuses as too large (413 / 40005) is delivered as a link instead; the port
  raises only when Discord cannot be reached at all (the core then retries the delivery).
- A retry after a crash (`delivery_attempts > 1`, `tell_attempts > 1`) first reads the
  channel's recent history for the bot's earlier video or failure notice (which names the
  job id) and does not post it again; if Discord refuses the read, it posts (twice, not never).
  A cancel posts nothing new: only the status message is edited.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord import render, views
from adapters.discord.admin import AdminMessages
from adapters.discord.surface import PLATFORM, DiscordSurface
from bot.domain.models import Balance, DeliveredVideo, Job, JobStatus

if TYPE_CHECKING:
    from bot.services.alerts import Alert
    from bot.services.approvals import Approval
    from bot.services.interface import BotService

log = logging.getLogger(__name__)

HISTORY_LOOKBACK = 50  # messages read to find a video posted before a crash

TOKEN_GONE_CODES = frozenset({50027, 10015})  # Invalid Webhook Token, Unknown Webhook
TOO_LARGE_CODE = 40005
FINISHED_REMEMBERED = 1000


def token_gone(exc: discord.HTTPException) -> bool:
    return exc.code in TOKEN_GONE_CODES or exc.status == 401


class DiscordPort:
    platform = PLATFORM

    def __init__(
        self, client: discord.Client, service: BotService, *, progress_interval: float = 3.0
    ) -> None:
        self.client = client
        self.service = service
        self.progress_interval = progress_interval
        # An edit goes to the interaction's own webhook or the job's channel: Discord's
        # buckets are per route, not per guild, and discord.py waits out a 429 itself.
        self.edits_per_minute: float | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._finished: dict[str, None] = {}  # insertion-ordered set of terminal renders
        self._shown: dict[str, str] = {}  # job id → what its status message shows now
        self.admin = AdminMessages(client, service)

    # -- ChatPort ------------------------------------------------------------------------------

    async def on_job_progress(self, job: Job) -> None:
        await self.show_status(job.id, estimate=job.progress_estimate)

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        # The core records `delivered` after this returns: render that state already.
        done = job.model_copy(update={"status": JobStatus.DELIVERED, "progress": 100})
        await self._final_status(done, balance)
        if job.delivery_attempts > 1 and await self._already_posted(job, video):
            log.info("job %s: the video was posted before a restart; not posting it again", job.id)
            return
        await self._post_video(job, video)

    async def _already_posted(self, job: Job, video: DeliveredVideo) -> bool:
        """After a crash between posting and recording: is the video in the channel already?
        (Reads recent history: the bot's Read Message History permission.)"""
        s = await self._surface(job.id)
        me = self.client.user
        link = video.hosted_url or video.source_url
        try:
            channel = self.client.get_partial_messageable(s.channel_id)
            async for message in channel.history(limit=HISTORY_LOOKBACK):
                if me is not None and message.author.id != me.id:
                    continue
                if any(a.filename == video.filename for a in message.attachments):
                    return True
                if link and link in (message.content or ""):
                    return True
        except discord.HTTPException as exc:
            log.warning("job %s: cannot read the channel to check (%s)", job.id, exc.status)
        return False

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        await self._final_status(job, balance, note=f"**Reason:** {reason}")
        if job.tell_attempts > 1 and await self._already_told(job):
            log.info("job %s: the failure was told before a restart; not telling it again", job.id)
            return
        surface = await self._surface(job.id)
        await self._post(
            job.id,
            surface,
            lambda: {"content": render.failed_text(job, reason, balance, mention=surface.mention)},
        )

    async def _already_told(self, job: Job) -> bool:
        """After a crash between the failure notice and its record: is the notice in the
        channel already? (The bot's own recent messages naming the job; Read Message History.)
        When Discord does not let the bot look, the notice is posted: twice beats never."""
        s = await self._surface(job.id)
        me = self.client.user
        try:
            channel = self.client.get_partial_messageable(s.channel_id)
            async for message in channel.history(limit=HISTORY_LOOKBACK):
                if me is not None and message.author.id != me.id:
                    continue
                content = message.content or ""
                if render.FAILED_WORDS in content and f"`{job.id}`" in content:
                    return True
        except discord.HTTPException as exc:
            log.warning(
                "job %s: cannot read the channel to check for an earlier notice (HTTP %s); "
                "posting it",
                job.id,
                exc.status,
            )
        return False

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        # Only the status message changes (an idempotent edit): nothing new to repeat.
        await self._final_status(job, balance)

    # -- AdminPort (admin.py) ------------------------------------------------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        await self.admin.on_approval_requested(approval, balance)

    async def on_approval_decided(self, approval: Approval) -> None:
        await self.admin.on_approval_decided(approval)

    async def on_admin_alert(self, alert: Alert) -> None:
        await self.admin.on_admin_alert(alert)

    async def _final_status(self, job: Job, balance: Balance, *, note: str | None = None) -> None:
        """The status message's last edit. Discord refusing it (message deleted, missing
        access) must not hold back the video or the news, so only an unreachable Discord
        (a network error) propagates."""
        try:
            await self.show_status(job.id, job=job, balance=balance, note=note)
        except discord.HTTPException as exc:
            log.warning(
                "job %s: status message not updated (HTTP %s, code %s)",
                job.id,
                exc.status,
                exc.code,
            )

    # -- status message ------------------------------------------------------------------------

    async def show_status(
        self,
        job_id: str,
        *,
        job: Job | None = None,
        balance: Balance | None = None,
        note: str | None = None,
        estimate: int | None = None,
    ) -> None:
        """Render the job's status message from the newest state (or the terminal `job` given),
        with the core's progress `estimate` while the task is rendering."""
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            fresh = await self.service.get_job(job_id)
            job = job or fresh.model_copy(update={"progress_estimate": estimate})
            if not job.status.terminal and job_id in self._finished:
                return  # a late progress render must not cover the final state
            if balance is None:
                balance = await self.service.balance(job.requester)  # with the job's roles
            surface = DiscordSurface.load(fresh.surface)
            embed = render.job_embed(job, balance, note=note)
            view = views.job_view(job, self.service.catalog)
            shown = json.dumps([embed.to_dict(), view.to_components()], sort_keys=True)
            if self._shown.get(job_id) == shown:
                return  # Discord already shows exactly this: spare the rate limit
            await self._edit_status(job_id, surface, embed, view)
            self._shown[job_id] = shown
            if job.status.terminal:
                self._finished[job_id] = None
                while len(self._finished) > FINISHED_REMEMBERED:
                    self._finished.pop(next(iter(self._finished)))
                self._locks.pop(job_id, None)
                self._shown.pop(job_id, None)

    async def _edit_status(
        self,
        job_id: str,
        s: DiscordSurface,
        embed: discord.Embed,
        view: discord.ui.View,
    ) -> None:
        if s.webhook_usable() and s.message_id is not None:
            try:
                await self._webhook(s).edit_message(s.message_id, embed=embed, view=view)
                return
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
                await self._token_died(job_id, s)
        channel = self.client.get_partial_messageable(s.channel_id)
        if s.bot_message_id is not None:
            try:
                await channel.get_partial_message(s.bot_message_id).edit(embed=embed, view=view)
                return
            except discord.NotFound:
                pass  # deleted by someone: post a fresh one
        message = await channel.send(embed=embed, view=view)
        s.bot_message_id = message.id
        await self.service.save_surface(job_id, s.dump())

    # -- new messages --------------------------------------------------------------------------

    async def _post_video(self, job: Job, video: DeliveredVideo) -> None:
        s = await self._surface(job.id)
        path = video.path
        if path is not None and video.size <= s.filesize_limit:
            try:
                await self._post(
                    job.id,
                    s,
                    lambda: {
                        "content": render.delivered_text(
                            job, video, mention=s.mention, as_file=True
                        ),
                        "file": discord.File(path, filename=video.filename),
                    },
                )
                return
            except discord.HTTPException as exc:
                if exc.status != 413 and exc.code != TOO_LARGE_CODE:
                    raise
                log.info(
                    "job %s: Discord refused the %d-byte upload; sending a link", job.id, video.size
                )
        link = video.hosted_url or video.source_url
        link_buttons = views.link_view(link) if link else None
        await self._post(
            job.id,
            s,
            lambda: {
                "content": render.delivered_text(job, video, mention=s.mention, as_file=False),
                **({"view": link_buttons} if link_buttons else {}),
            },
        )

    async def _post(
        self,
        job_id: str,
        s: DiscordSurface,
        make: Callable[[], dict[str, Any]],
    ) -> None:
        """Post a new message; `make` builds fresh kwargs per attempt (a File is read once)."""
        if s.webhook_usable():
            try:
                await self._webhook(s).send(wait=True, **make())
                return
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
                await self._token_died(job_id, s)
        await self.client.get_partial_messageable(s.channel_id).send(**make())

    # -- plumbing ------------------------------------------------------------------------------

    def _webhook(self, s: DiscordSurface) -> discord.Webhook:
        assert s.app_id is not None and s.token is not None
        return discord.Webhook.partial(s.app_id, s.token, client=self.client)

    async def _surface(self, job_id: str) -> DiscordSurface:
        return DiscordSurface.load((await self.service.get_job(job_id)).surface)

    async def _token_died(self, job_id: str, s: DiscordSurface) -> None:
        log.info("job %s: interaction token no longer accepted; using the bot token", job_id)
        s.token_dead = True
        await self.service.save_surface(job_id, s.dump())
