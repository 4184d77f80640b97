"""`SlackPort`, the core's `ChatPort` (and `AdminPort`, via `SlackAdmins`) for Slack: one
progress message per job, a thread after.

    chat.postMessage (progress, buttons) ──chat.update on change──▶ final state
        └── thread: the MP4 (files_upload_v2 + comment) or a link; failure / cancel notes

Invariants:
- A job has at most one progress message. Its channel and ts are stored in the job's
  `Surface` (`channel`, `thread`) by `ensure_message`, which runs under a per-job lock and
  re-reads the job first, so the handler that accepted the job and the tracker's first event
  cannot both post one. After a restart the stored ts is used again.
- `chat.update` is sent only when the rendered message differs from the last one sent (the
  tracker already limits calls to one per `progress_interval`); 429s are retried by the web
  client's `AsyncRateLimitErrorRetryHandler`, honouring `Retry-After`.
- `on_job_delivered` returns normally once the user has the video or a link to it; it raises
  only when Slack could not be reached (the tracker then retries). The file is read off the
  event loop, and files bigger than `max_upload_bytes` are linked, not uploaded.
- A queued job's message shows its place in line ("Queued — #2 in line") and the credits held;
  the tracker calls `on_job_progress` whenever the place changes, and when the job starts.
- When the bot may not post in the requested channel (not a member, archived, gone), the job
  moves to a DM with the requester, and the surface says so.
- A retry after a crash between Slack taking a post and the record looks for the earlier
  post first: the video with `files.list` (`delivery_attempts > 1`), a failure / cancel note
  (which names the job id) among the bot's replies in the job's thread with
  `conversations.replies` (`tell_attempts > 1`; the `*:history` scopes). When Slack refuses the
  look (e.g. `missing_scope` on an install made before those scopes), it posts: twice, not never.
  Updating the progress message is idempotent and always repeated.
- Once the video is posted, the progress message's permalink is saved in the job's surface
  (adapters/slack/permalinks.py: the gallery's "Open the Slack message").
- Every call carries the token of the job's own workspace (`clients.for_team`, read by the job's
  workspace: right after a restart or on another replica too). A workspace that has no
  installation any more (uninstalled) gets nothing: the job's events are logged once and
  return normally, so the tracker finishes the job instead of retrying it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.actors import SlackActors
from adapters.slack.admins import SlackAdmins
from adapters.slack.clients import ClientBook, NotInstalled
from adapters.slack.permalinks import save_permalink
from bot.domain.catalog import Catalog
from bot.domain.models import Balance, DeliveredVideo, Job, JobStatus
from bot.services.alerts import Alert
from bot.services.approvals import Approval
from bot.services.interface import BotService

log = logging.getLogger(__name__)

UPLOAD_TIMEOUT = 30 * 60.0  # seconds for one video upload to Slack
THREAD_PAGE = 200  # replies per conversations.replies page when looking for an earlier note
THREAD_PAGES = 5  # pages read at most (a job's thread holds a handful of replies)

# Slack's own per-file limit is 1 GB; the SDK holds the whole file in memory while uploading.
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
# Errors that mean "not here": the job is moved to a DM with the requester instead.
CANNOT_POST_HERE = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "cannot_dm_bot",
        "ekm_access_denied",
        "team_access_not_granted",
    }
)


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code from an API error (never the token or the request)."""
    data = getattr(exc.response, "data", None)
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "unknown_error"


class SlackPort:
    """Talks back to Slack users about their jobs."""

    platform = "slack"
    progress_interval = 3.0
    #: `chat.update` is a tier 3 method: about 50 calls a minute per workspace, which every
    #: progress message of the workspace shares (docs/PLATFORM-FACTS.md).
    edits_per_minute: float | None = 50.0

    def __init__(self, clients: ClientBook, service: BotService, catalog: Catalog) -> None:
        self.clients = clients
        self.service = service
        self.catalog = catalog
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_render: dict[str, str] = {}
        # (user_id, bot_id) of the bot, per workspace
        self._me: dict[str, tuple[str | None, str | None]] = {}
        self._unreachable: set[str] = set()  # jobs of uninstalled workspaces, logged once
        self.admins = SlackAdmins(clients, service, self.open_dm)
        self.actors = SlackActors(clients)  # who acts, with the facts permissions need

    # -- the progress message -------------------------------------------------------------

    def _lock(self, job_id: str) -> asyncio.Lock:
        return self._locks.setdefault(job_id, asyncio.Lock())

    def _forget(self, job_id: str) -> None:
        self._locks.pop(job_id, None)
        self._last_render.pop(job_id, None)

    def _render(self, job: Job) -> tuple[str, list[dict[str, Any]]]:
        remixable = self.catalog.remix_model_for(job.request.model) is not None
        return render.progress_message(job, remixable=remixable)

    async def client_of(self, job: Job) -> AsyncWebClient:
        """The Web API client of the job's workspace (NotInstalled when it has none)."""
        return await self.clients.for_team(job.requester.workspace)

    async def open_dm(self, team: str, user: str) -> str:
        client = await self.clients.for_team(team)
        response = await client.conversations_open(users=user)
        return str(response["channel"]["id"])

    async def _reaching(
        self, job: Job, work: Coroutine[Any, Any, None], *, final: bool = True
    ) -> None:
        """Run `work`; when the job's workspace has no installation, say so once per job and
        return normally (nothing can reach it: the tracker must not retry)."""
        try:
            await work
        except NotInstalled as exc:
            if job.id not in self._unreachable:
                self._unreachable.add(job.id)
                log.warning("job %s: %s; nothing is posted for it", job.id, exc)
            if final:
                self._forget(job.id)

    async def ensure_message(self, job: Job) -> Job:
        """The job with a progress message in its surface (posting it when there is none)."""
        async with self._lock(job.id):
            return await self._ensure_locked(job)

    async def _ensure_locked(self, job: Job) -> Job:
        fresh = await self.service.get_job(job.id)
        if fresh.surface.thread and fresh.surface.channel:
            return fresh
        text, blocks = self._render(fresh)
        channel = fresh.surface.channel
        data = dict(fresh.surface.data)
        client = await self.client_of(fresh)
        try:
            if channel is None:
                raise _NoChannel
            response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        except (SlackApiError, _NoChannel) as exc:
            if isinstance(exc, SlackApiError) and slack_error(exc) not in CANNOT_POST_HERE:
                raise
            if channel is not None:
                data["moved_from"] = channel
            channel = await self.open_dm(fresh.requester.workspace, fresh.requester.user)
            if "moved_from" in data:
                await client.chat_postMessage(
                    channel=channel,
                    text=f"I can't post in <#{data['moved_from']}> (invite me with "
                    "`/invite @Sora`), so your video comes here.",
                )
            response = await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        surface = fresh.surface.model_copy(
            update={"channel": channel, "thread": str(response["ts"]), "data": data}
        )
        await self.service.save_surface(fresh.id, surface)
        self._last_render[fresh.id] = _key(blocks)
        return fresh.model_copy(update={"surface": surface})

    async def _update(self, job: Job) -> None:
        text, blocks = self._render(job)
        key = _key(blocks)
        if self._last_render.get(job.id) == key:
            return
        channel, ts = _where(job)
        client = await self.client_of(job)
        try:
            await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            # The message was deleted or the channel left: the thread replies still inform.
            log.warning("job %s: progress message not updated (%s)", job.id, slack_error(exc))
            return
        self._last_render[job.id] = key

    async def _reply(self, job: Job, text: str) -> None:
        channel, ts = _where(job)
        client = await self.client_of(job)
        await client.chat_postMessage(channel=channel, thread_ts=ts, text=text)

    # -- ChatPort ---------------------------------------------------------------------------

    async def on_job_progress(self, job: Job) -> None:
        await self._reaching(job, self._progress(job), final=False)

    async def _progress(self, job: Job) -> None:
        async with self._lock(job.id):
            current = await self._ensure_locked(job)
            # A cancel (from a button) may have finished the job while this event waited for
            # the lock: never paint "rendering" over a final state.
            if current.status.terminal:
                return
            if current.status == JobStatus.SUBMITTED and job.progress_estimate is not None:
                current = current.model_copy(update={"progress_estimate": job.progress_estimate})
            await self._update(current)

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        await self._reaching(job, self._delivered(job, video, balance))

    async def _delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        async with self._lock(job.id):
            current = await self._ensure_locked(job)
            charged = current.charged_uc if current.charged_uc is not None else current.reserved_uc
            shown = current.model_copy(
                update={"status": JobStatus.DELIVERED, "progress": 100, "charged_uc": charged}
            )
            await self._update(shown)
            await self._deliver(shown, video, balance)
            await save_permalink(await self.client_of(current), self.service, current)
        self._forget(job.id)

    async def _upload_streamed(
        self, job: Job, video: DeliveredVideo, path: str, balance: Balance
    ) -> None:
        """files_upload_v2's three steps, with the file streamed from disk (memory does not grow
        with the video, unlike slack_sdk's helper, which reads the whole file first)."""
        client = await self.client_of(job)
        ticket = await client.files_getUploadURLExternal(filename=video.filename, length=video.size)
        handle = await asyncio.to_thread(Path(path).open, "rb")
        try:
            timeout = aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(
                    str(ticket["upload_url"]),
                    data=handle,
                    headers={"Content-Type": "application/octet-stream"},
                ) as response,
            ):
                if response.status != 200:
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status
                    )
        finally:
            await asyncio.to_thread(handle.close)
        await client.files_completeUploadExternal(
            files=[{"id": ticket["file_id"], "title": render.short(job.request.prompt, 200)}],
            channel_id=job.surface.channel,
            thread_ts=job.surface.thread,
            initial_comment=render.delivered_comment(job, balance),
        )

    async def _already_uploaded(self, job: Job, video: DeliveredVideo) -> bool:
        """After a crash between the upload and its record: is the file in the channel already?
        (`files.list` needs only `files:read`; the file name carries the job id's tail.)"""
        client = await self.client_of(job)
        try:
            answer = await client.files_list(
                channel=job.surface.channel,
                ts_from=str(int(job.created_at.timestamp())),
                count=100,
            )
        except (SlackApiError, SlackRequestError) as exc:
            log.warning("job %s: cannot list the channel's files (%s)", job.id, type(exc).__name__)
            return False
        return any(f.get("name") == video.filename for f in answer.get("files") or [])

    async def _deliver(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        if job.delivery_attempts > 1 and await self._already_uploaded(job, video):
            log.info("job %s: the video was uploaded before a restart; not again", job.id)
            return
        if video.path is None:
            await self._reply(
                job, render.link_message(job, video, balance, "The bot could not keep a copy.")
            )
            return
        if video.size > self.max_upload_bytes:
            await self._reply(
                job, render.link_message(job, video, balance, "It is too big to upload to Slack.")
            )
            return
        try:
            await self._upload_streamed(job, video, video.path, balance)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning(
                "job %s: the upload failed (%s); posting a link", job.id, type(exc).__name__
            )
            await self._reply(
                job, render.link_message(job, video, balance, "The upload to Slack failed.")
            )
        except SlackApiError as exc:
            log.warning(
                "job %s: Slack refused the upload (%s); posting a link", job.id, slack_error(exc)
            )
            await self._reply(
                job, render.link_message(job, video, balance, "Slack did not take the file.")
            )
        except SlackRequestError as exc:
            log.warning(
                "job %s: the upload failed (%s); posting a link", job.id, type(exc).__name__
            )
            await self._reply(
                job, render.link_message(job, video, balance, "The upload to Slack failed.")
            )

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        await self._reaching(job, self._failed(job, reason, balance))

    async def _failed(self, job: Job, reason: str, balance: Balance) -> None:
        async with self._lock(job.id):
            current = await self._ensure_locked(job)
            await self._update(
                current.model_copy(update={"status": JobStatus.FAILED, "error": reason})
            )
            if job.tell_attempts > 1 and await self._already_told(current, render.FAILED_WORDS):
                log.info("job %s: the failure was told before a restart; not again", job.id)
            else:
                await self._reply(current, render.failed_message(current, reason, balance))
        self._forget(job.id)

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        await self._reaching(job, self._cancelled(job, balance))

    async def _cancelled(self, job: Job, balance: Balance) -> None:
        async with self._lock(job.id):
            current = await self._ensure_locked(job)
            await self._update(current.model_copy(update={"status": JobStatus.CANCELLED}))
            if job.tell_attempts > 1 and await self._already_told(current, render.CANCELLED_WORDS):
                log.info("job %s: the cancel was told before a restart; not again", job.id)
            else:
                await self._reply(current, render.cancelled_message(current, balance))
        self._forget(job.id)

    async def _already_told(self, job: Job, words: str) -> bool:
        """After a crash between a thread note and its record: is the note (`words` and the job
        id, posted by this bot) among the replies in the job's thread already?"""
        channel, ts = _where(job)
        client = await self.client_of(job)
        try:
            user_id, bot_id = await self._identity(job.requester.workspace, client)
            cursor: str | None = None
            for _ in range(THREAD_PAGES):
                answer = await client.conversations_replies(
                    channel=channel, ts=ts, limit=THREAD_PAGE, cursor=cursor
                )
                for message in answer.get("messages") or []:
                    text = str(message.get("text") or "")
                    ours = (user_id is not None and message.get("user") == user_id) or (
                        bot_id is not None and message.get("bot_id") == bot_id
                    )
                    if ours and message.get("ts") != ts and words in text and job.id in text:
                        return True
                cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            why = slack_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning(
                "job %s: cannot read the thread to check for an earlier note (%s); posting it",
                job.id,
                why,
            )
        return False

    async def _identity(self, team: str, client: AsyncWebClient) -> tuple[str | None, str | None]:
        """The bot's own user id and bot id in `team` (auth.test, asked once per workspace)."""
        if team not in self._me:
            auth = await client.auth_test()
            user_id, bot_id = auth.get("user_id"), auth.get("bot_id")
            self._me[team] = (
                str(user_id) if user_id else None,
                str(bot_id) if bot_id else None,
            )
        return self._me[team]

    # -- AdminPort (approvals and alerts: adapters/slack/admins.py) --------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        await self.admins.on_approval_requested(approval, balance)

    async def on_approval_decided(self, approval: Approval) -> None:
        await self.admins.on_approval_decided(approval)

    async def on_admin_alert(self, alert: Alert) -> None:
        await self.admins.on_admin_alert(alert)


class _NoChannel(Exception):
    """The job names no channel (a modal left empty): it goes to a DM."""


def _where(job: Job) -> tuple[str, str]:
    """(channel, progress message ts) of a job that has its message (after `_ensure_locked`)."""
    channel, ts = job.surface.channel, job.surface.thread
    if channel is None or ts is None:
        raise RuntimeError(f"job {job.id} has no progress message yet")
    return channel, ts


def _key(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, sort_keys=True)
