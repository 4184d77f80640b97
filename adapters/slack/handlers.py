"""Bolt listeners: slash command, shortcuts, buttons, modal submissions, App Home.

Every listener acknowledges first and fast: `ack()` answers Slack's HTTP request (AsyncApp
returns the response as soon as `ack()` is called), and anything that may take longer —
budget checks, Web API calls, image downloads — runs in a task the runtime keeps (`spawn`).
Exceptions: modals are validated *before* `ack()` because their field errors travel in the
ack itself; that validation is pure (no I/O). `views.open` runs right after `ack()`, before
any slow work, because a `trigger_id` expires after 3 seconds.

Invariants: handlers turn Slack payloads into core calls and core answers into Slack output;
credit, permission and job-state rules are the core's. Errors the user can act on are shown
to that user only (ephemeral, or a DM when the bot cannot reach the channel). Web API calls
use the token of the workspace the payload came from (`clients.for_team`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from adapters.slack import admin_render, modal, render
from adapters.slack.clients import ClientBook
from adapters.slack.commands import REPORT_VERBS, run_text_command
from adapters.slack.images import PlannedImage, first_image, plan_image, rehost_image
from adapters.slack.port import SlackPort
from adapters.slack.reports import SlackReports
from bot.domain.chat_commands import ChatCommand
from bot.domain.errors import BotError, BudgetError, InputError
from bot.domain.models import Job, Requester, Surface, VideoRequest
from bot.domain.requests import remix_options
from bot.infra.logs import bind_job
from bot.services.interface import BotService

log = logging.getLogger(__name__)

SHORTCUT_GLOBAL = "sora_make_video"
SHORTCUT_MESSAGE = "sora_from_message"
Spawn = Callable[[Coroutine[Any, Any, None]], None]
#: A private answer to the requester: (text, blocks or None).
Reply = Callable[[str, list[render.Block] | None], Coroutine[Any, Any, None]]


def requester_of(body: dict[str, Any]) -> Requester:
    """Who acted, from any Slack payload (slash command form or interactivity JSON)."""
    user = body.get("user")
    if isinstance(user, dict):
        team = body.get("team") or {}
        workspace = (team.get("id") if isinstance(team, dict) else None) or user.get("team_id")
        return Requester(
            platform="slack",
            workspace=str(workspace or "unknown"),
            user=str(user["id"]),
            display_name=user.get("username") or user.get("name"),
        )
    user_id, team_id = body.get("user_id"), body.get("team_id")
    if not (isinstance(user_id, str) and user_id and isinstance(team_id, str) and team_id):
        # Slack always sends both; a body without them is not a real command.
        raise InputError("Slack did not say who sent this command or from which workspace.")
    return Requester(
        platform="slack",
        workspace=team_id,
        user=user_id,
        display_name=body.get("user_name"),
    )


class SlackHandlers:
    def __init__(
        self, service: BotService, port: SlackPort, clients: ClientBook, spawn: Spawn
    ) -> None:
        self.service = service
        self.port = port
        self.clients = clients
        self.spawn = spawn
        self.reports = SlackReports(clients, service, port.open_dm)

    def register(self, app: AsyncApp) -> None:
        app.command("/sora")(self.on_command)
        app.shortcut(SHORTCUT_GLOBAL)(self.on_global_shortcut)
        app.shortcut(SHORTCUT_MESSAGE)(self.on_message_shortcut)
        app.view(modal.VIDEO_MODAL)(self.on_video_modal)
        app.view(modal.REMIX_MODAL)(self.on_remix_modal)
        app.action(render.ACTION_CANCEL)(self.on_cancel)
        app.action(render.ACTION_AGAIN)(self.on_again)
        app.action(render.ACTION_REMIX)(self.on_remix)
        app.event("app_home_opened")(self.on_home_opened)

    # -- telling the user -------------------------------------------------------------------

    async def tell(
        self,
        requester: Requester,
        channel: str | None,
        text: str,
        blocks: list[render.Block] | None = None,
    ) -> None:
        """Only `requester` sees it: ephemeral in `channel`, else a DM."""
        client = await self.clients.for_team(requester.workspace)
        if channel:
            try:
                await client.chat_postEphemeral(
                    channel=channel, user=requester.user, text=text, blocks=blocks
                )
                return
            except SlackApiError:
                pass  # not a member there: fall back to a DM
        dm = await self.port.open_dm(requester.workspace, requester.user)
        await client.chat_postMessage(channel=dm, text=text, blocks=blocks)

    # -- starting jobs ----------------------------------------------------------------------

    async def start_job(
        self,
        requester: Requester,
        request: VideoRequest,
        surface: Surface,
        reply: Reply,
    ) -> None:
        """Submit (holding the quote) and post the progress message; refusals go to `reply`,
        a budget refusal with an "Ask an admin" button when there is an admin to ask."""
        try:
            job = await self.service.submit(requester, request, surface)
        except BudgetError as err:
            text = f":warning: {err}"
            if not self.port.admins.reachable(requester.workspace):
                await reply(text, None)
                return
            await reply(text, admin_render.refusal_blocks(text, self._ask_value(request, surface)))
            return
        except BotError as err:
            await reply(f":warning: {err}", None)
            return
        bind_job(job.id)  # this spawned task's remaining log lines are about the job
        await self.port.ensure_message(job)

    def _ask_value(self, request: VideoRequest, surface: Surface) -> str | None:
        return admin_render.ask_value_of(request, surface.channel, self.service.catalog)

    # -- /sora ------------------------------------------------------------------------------

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(body.get("text") or "")
        try:
            requester = requester_of(body)
        except InputError as err:
            await ack(text=f":warning: {err}")
            return
        channel = body.get("channel_id")
        try:
            command = self.service.parse_command(text)
        except InputError as err:
            await ack(text=f":warning: {err}")
            return
        if command.kind != "video":
            await ack()
            self.spawn(self._text_command(requester, command, respond, channel))
            return
        if not command.text:
            await ack()
            model = self._default_model(requester)
            view = modal.video_modal(self.service.catalog, model, channel=channel)
            self.spawn(self._open_modal(requester, body["trigger_id"], view))
            return
        try:
            # Slack escapes the text (`&amp;`, `<https://…|label>`, `<@U…|name>`): the prompt
            # gets what the user typed. Admin commands keep the escapes: they carry user ids.
            request = self.service.parse(modal.plain_text(command.text), requester=requester)
        except InputError as err:
            await ack(text=f":warning: {err}")
            return
        await ack(
            text=f":clapper: On it: {render.request_line_of(request)}. Checking your credits…"
        )
        surface = Surface(channel=channel, data={"team": requester.workspace})

        async def reply(message: str, blocks: list[render.Block] | None) -> None:
            await respond(
                text=message, blocks=blocks, response_type="ephemeral", replace_original=False
            )

        self.spawn(self.start_job(requester, request, surface, reply))

    async def _text_command(
        self,
        requester: Requester,
        command: ChatCommand,
        respond: AsyncRespond,
        channel: str | None,
    ) -> None:
        verb = command.args[0].casefold() if command.args else ""
        if command.kind in ("admin", "cancel", "gallery"):
            requester = await self.port.actors.with_facts(requester)
        if command.kind == "admin" and verb in REPORT_VERBS:
            text = await self.reports.run(requester, verb, command.args[1:], channel)
        else:
            text = await run_text_command(self.service, requester, command)
        # unfurl_links off: a preview robot must not open (and so use up) a gallery link.
        await respond(text=text, response_type="ephemeral", unfurl_links=False)

    def _default_model(self, requester: Requester) -> str:  # the workspace's (else the env's)
        return self.service.default_model_for("slack", requester.workspace)

    # -- shortcuts --------------------------------------------------------------------------

    async def on_global_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        requester = requester_of(body)
        view = modal.video_modal(self.service.catalog, self._default_model(requester))
        self.spawn(self._open_modal(requester, body["trigger_id"], view))

    async def on_message_shortcut(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        requester = requester_of(body)
        view = modal.video_modal(
            self.service.catalog,
            self._default_model(requester),
            channel=channel,
            prompt=modal.plain_text(str(message.get("text") or "")),
            image_file=first_image(message.get("files")),
        )
        self.spawn(self._open_modal(requester, body["trigger_id"], view))

    async def _open_modal(self, requester: Requester, trigger_id: str, view: Any) -> None:
        """`views.open` after the ack (the trigger lives 3 s; spawned work starts within
        HOLD_MAX)."""
        client = await self.clients.for_team(requester.workspace)
        await client.views_open(trigger_id=trigger_id, view=view)

    # -- the video modal --------------------------------------------------------------------

    async def on_video_modal(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        form = modal.read_video_form(view)
        requester = requester_of(body)
        try:
            # Built once, before the ack, so every refusal is a field error; no I/O here: an
            # image gets its signed link now and is downloaded there after the ack.
            for file in form.files:
                problem = modal.image_problem(file)
                if problem:
                    raise InputError(problem, field="image_url")
            images = [plan_image(self.service, file_id) for file_id in form.image_file_ids]
            options = form.options([image.url for image in images])
            request = self.service.build(options, requester=requester)
        except InputError as err:
            await ack(response_action="errors", errors=modal.field_errors(err))
            return
        await ack()
        self.spawn(self._submit_form(requester, form, request, images))

    async def _submit_form(
        self,
        requester: Requester,
        form: modal.VideoForm,
        request: VideoRequest,
        images: list[PlannedImage],
    ) -> None:
        async def reply(message: str, blocks: list[render.Block] | None = None) -> None:
            await self.tell(requester, form.channel, message, blocks)

        client = await self.clients.for_team(requester.workspace)
        for image in images:
            try:
                await rehost_image(client, image)
            except BotError as err:
                await reply(f":warning: {err}")
                return
        surface = Surface(channel=form.channel, data={"team": requester.workspace})
        await self.start_job(requester, request, surface, reply)

    # -- buttons ----------------------------------------------------------------------------

    async def on_cancel(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._button(body, respond, "cancel"))

    async def on_again(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._button(body, respond, "again"))

    async def _button(self, body: dict[str, Any], respond: AsyncRespond, verb: str) -> None:
        actor = requester_of(body)
        job_id = str(body["actions"][0]["value"])
        channel = (body.get("channel") or {}).get("id")

        async def reply(message: str) -> None:
            await respond(text=message, response_type="ephemeral", replace_original=False)

        try:
            if verb == "cancel":
                await self.service.cancel(job_id, await self.port.actors.with_facts(actor))
                return
            job = await self.service.again(
                job_id, actor, Surface(channel=channel, data={"team": actor.workspace})
            )
        except BotError as err:
            await reply(f":warning: {err}")
            return
        bind_job(job.id)  # this spawned task's remaining log lines are about the job
        await self.port.ensure_message(job)

    async def on_remix(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        self.spawn(self._remix_modal(body, respond))

    async def _remix_modal(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        job_id = str(body["actions"][0]["value"])
        channel = (body.get("channel") or {}).get("id")
        try:
            job = await self.service.get_job(job_id)
        except BotError as err:
            await respond(
                text=f":warning: {err}", response_type="ephemeral", replace_original=False
            )
            return
        remix_model = self.service.catalog.remix_model_for(job.request.model) or "?"
        view = modal.remix_modal(
            job.id, render.short(job.request.prompt, 300), remix_model, channel
        )
        await self._open_modal(requester_of(body), body["trigger_id"], view)

    async def on_remix_modal(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        job_id, prompt, channel = modal.read_remix_form(view)
        actor = requester_of(body)
        try:
            if not prompt.strip():
                raise InputError("Say what should change.", field="prompt")
            job = await self.service.get_job(job_id)  # one indexed read: well inside 3 s
            remix_model = self.service.catalog.remix_model_for(job.request.model)
            if remix_model is not None:  # what service.remix checks again with the job's task
                self.service.build(
                    remix_options(job.request, remix_model, job.task_id or "pending", prompt)
                )
        except BotError as err:
            await ack(response_action="errors", errors={"prompt": render.short(str(err), 300)})
            return
        await ack()

        async def run() -> None:
            surface = Surface(channel=channel, data={"team": actor.workspace})
            try:
                job = await self.service.remix(job_id, actor, prompt, surface)
            except BotError as err:
                await self.tell(actor, channel, f":warning: {err}")
                return
            await self.port.ensure_message(job)

        self.spawn(run())

    # -- App Home ---------------------------------------------------------------------------

    async def on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # Events are acknowledged by bolt before this runs.
        if event.get("tab", "home") != "home":
            return
        user = str(event["user"])
        team = str(body.get("team_id") or event.get("view", {}).get("team_id") or "unknown")
        self.spawn(self.publish_home(Requester(platform="slack", workspace=team, user=user)))

    async def publish_home(self, requester: Requester) -> None:
        """The App Home tab of `requester`: figures, recent jobs, and for those the core says
        administer this workspace its usage and waiting requests."""
        requester = await self.port.actors.with_facts(requester)
        user, team = requester.user, requester.workspace
        balance, jobs = await asyncio.gather(
            self.service.balance(requester), self.service.recent_jobs(requester, limit=10)
        )
        links: dict[str, str] = {}
        for job_id, path in await asyncio.to_thread(_kept_videos, jobs):
            link = self.service.host_file(path)
            if link:
                links[job_id] = link
        usage = None
        admin_blocks: list[render.Block] = []
        if self.service.may_administer(requester):
            usage = await self.service.usage(requester, "slack", team)
            waiting = await self.service.pending_approvals(requester, "slack", team)
            admin_blocks = admin_render.home_approvals(waiting, dt.datetime.now(dt.UTC))
        client = await self.clients.for_team(team)
        await client.views_publish(
            user_id=user, view=render.home_view(balance, jobs, usage, links, admin_blocks)
        )


def _kept_videos(jobs: list[Job]) -> list[tuple[str, Path]]:
    """(job id, file) for jobs whose video is still in MEDIA_DIR (retention deletes old ones)."""
    found = []
    for job in jobs:
        if job.media_path and Path(job.media_path).is_file():
            found.append((job.id, Path(job.media_path)))
    return found
