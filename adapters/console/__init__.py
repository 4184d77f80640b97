"""The console adapter: `sora-bot demo`, a chat in the terminal through the same port and
service Discord and Slack use.

Commands: `/sora <prompt and flags>` (or the prompt alone), `/credits`, `/jobs`,
`/cancel <job id>`, `/gallery` (a link to the web gallery), `/help`, `/ask`,
`/quit`. What a line means is decided by the one chat
parser every surface uses (`BotService.parse_command`, bot/domain/chat_commands.py): `/sora
help`, `/help` and `help` are the same command here, in Slack and in Discord's prompt. A
progress line is printed whenever a job moves (queued place, rendering %, downloading; `~N%
(estimate)` between EvoLink's reads); the saved MP4's path is printed on delivery.

Words for people (one vocabulary on every surface): *allowance* = limit + granted, *used*,
*held*, *left*.

Invariant: this module only renders and parses; every rule (grammar, budget, state) is the core's.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from bot.domain.chat_commands import ChatCommand
from bot.domain.errors import BotError, BudgetError
from bot.domain.models import (
    Balance,
    DeliveredVideo,
    Job,
    JobStatus,
    Requester,
    Surface,
    VideoRequest,
    fmt_credits,
)
from bot.services.alerts import Alert
from bot.services.approvals import Approval
from bot.services.interface import BotService

BAR_WIDTH = 24


def progress_bar(percent: int, width: int = BAR_WIDTH) -> str:
    percent = max(0, min(percent, 100))
    filled = round(width * percent / 100)
    return "█" * filled + "░" * (width - filled)


def describe_balance(balance: Balance) -> str:
    allowance = balance.limit + balance.granted
    granted = f" = limit {fmt_credits(balance.limit)} + granted {fmt_credits(balance.granted)}"
    text = (
        f"{fmt_credits(balance.available)} credits left this period: allowance "
        f"{fmt_credits(allowance)}{granted if balance.granted else ''}, "
        f"used {fmt_credits(balance.used)}, held {fmt_credits(balance.held)}"
        + (f" (of which {fmt_credits(balance.queued)} queued)" if balance.queued else "")
        + f"; resets {balance.resets_at:%Y-%m-%d %H:%M} UTC"
    )
    if balance.team_budget is not None and balance.team_available is not None:
        text += (
            f". Team: {fmt_credits(balance.team_available)} left of its budget "
            f"{fmt_credits(balance.team_budget)}"
        )
    return text


class ConsolePort:
    """Prints job events; `outcomes` lets `demo -c` wait for a job's end."""

    platform = "console"
    progress_interval = 1.0  # a line per update: at most one a second per job
    edits_per_minute: float | None = None

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.outcomes: dict[str, asyncio.Future[Job]] = {}
        self.saved: dict[str, str] = {}

    def watch(self, job_id: str) -> asyncio.Future[Job]:
        return self.outcomes.setdefault(job_id, asyncio.get_running_loop().create_future())

    def _settle(self, job: Job) -> None:
        future = self.outcomes.get(job.id)
        if future is not None and not future.done():
            future.set_result(job)

    def _line(self, text: str) -> None:
        # Whole lines only: with several jobs and the user typing, a line rewritten in place
        # (carriage return) would be overwritten by the next job's update or the user's echo.
        self.out.write(text + "\n")
        self.out.flush()

    async def on_job_progress(self, job: Job) -> None:
        status = {
            JobStatus.PENDING: f"queued, #{job.queue_position} in line"
            if job.queued
            else "sending",
            JobStatus.SUBMITTED: "rendering",
            JobStatus.DELIVERING: "downloading",
        }.get(job.status, job.status.value)
        shown = job.shown_progress
        percent = f"~{shown.percent:2d}%" if shown.estimated else f"{shown.percent:3d}%"
        mark = " (estimate)" if shown.estimated else ""
        self._line(f"[{job.id}] {progress_bar(shown.percent)} {percent} {status}{mark}")

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        charged = job.charge
        where = video.path or f"{video.best_link} (could not save a copy)"
        self.saved[job.id] = where
        self._line(
            f"[{job.id}] delivered: {where} ({video.size:,} bytes). "
            f"Cost {fmt_credits(charged)} credits; {fmt_credits(balance.available)} left."
        )
        if video.hosted_url:
            self._line(f"[{job.id}] link: {video.hosted_url}")

    async def on_job_finished(self, job: Job) -> None:
        """JobFinishedPort (bot/services/interface.py): the job's end is recorded."""
        self._settle(job)

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        self._line(
            f"[{job.id}] failed: {reason} The {fmt_credits(job.reserved)} credits held were "
            f"returned; {fmt_credits(balance.available)} left."
        )
        self._settle(job)

    # -- AdminPort: the console user sees what admins would see ------------------------------

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        self._line(
            f"[admin] {approval.requester.key} asks for {fmt_credits(approval.price)} credits "
            f"({approval.request.model}, {approval.request.duration}s): "
            f"{approval.request.prompt[:60]!r}; allowance "
            f"{fmt_credits(balance.limit + balance.granted)}, used {fmt_credits(balance.used)}, "
            f"held {fmt_credits(balance.held)}, left {fmt_credits(balance.available)}. "
            f"Decide with: sora-bot admin approve {approval.id} (or deny)"
        )

    async def on_approval_decided(self, approval: Approval) -> None:
        # The console user is both the requester and the admin: tell the requester's side.
        if approval.status == "approved":
            job = f"; job {approval.job_id} starts now" if approval.job_id else ""
            by = f" by {approval.decided_by}" if approval.decided_by else ""
            self._line(f"[admin] your request {approval.id} was approved{by}{job}.")
        elif approval.status == "denied":
            self._line(f"[admin] your request {approval.id} was denied; nothing is held.")
        else:
            self._line(f"[admin] your request {approval.id} {approval.status}; nothing is held.")

    async def on_admin_alert(self, alert: Alert) -> None:
        self._line(f"[admin alert] {alert.text}")

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        self._line(
            f"[{job.id}] cancelled; {fmt_credits(job.reserved)} credits returned "
            f"({fmt_credits(balance.available)} left)."
        )
        self._settle(job)


def console_requester() -> Requester:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "me"
    return Requester(platform="console", workspace="local", user=user, display_name=user)


class ConsoleChat:
    """Parses console lines into service calls and prints the answers."""

    def __init__(self, service: BotService, port: ConsolePort, who: Requester) -> None:
        self.service = service
        self.port = port
        self.who = who
        self.refused: VideoRequest | None = None  # the last request refused for budget
        self.failed = False  # the last line was refused

    def say(self, text: str) -> None:
        self.port._line(text)

    async def handle(self, line: str) -> Job | None:
        """Run one typed line; returns the accepted job for a video request. `failed` says
        whether the last line was refused (bad input, budget, unknown command)."""
        self.failed = False
        text = line.strip()
        if not text:
            return None
        word = text.split(None, 1)[0].casefold()
        try:
            if word in ("/ask", "ask"):
                await self._ask()
                return None
            # `/credits` is `credits` is `/sora credits`: the one chat parser decides.
            command = self.service.parse_command(text if word == "/sora" else text.lstrip("/"))
            if command.kind == "video" and word.startswith("/") and word != "/sora":
                self.failed = True
                self.say(f"Unknown command {text.split(None, 1)[0]!r}. Type /help.")
                return None
            return await self._run(command)
        except BudgetError as exc:
            self.failed = True
            self.say(f"✗ {exc} Type /ask to ask an admin for it.")
        except BotError as exc:
            self.failed = True
            self.say(f"✗ {exc}")
        return None

    async def _run(self, command: ChatCommand) -> Job | None:
        if command.kind == "help":
            self.say(HELP + "\n" + self.service.usage_text(requester=self.who))
        elif command.kind == "credits":
            self.say(describe_balance(await self.service.balance(self.who)))
        elif command.kind == "jobs":
            self._jobs(await self.service.recent_jobs(self.who, limit=10))
        elif command.kind == "cancel":
            if not command.args:
                self.failed = True
                self.say("Which job? /cancel <job id> (the id is in [brackets] on its lines).")
                return None
            job = await self.service.cancel(command.args[0], self.who)
            self.say(
                f"Cancelled {job.id}; the {fmt_credits(job.reserved)} credits held were returned."
            )
        elif command.kind == "admin":
            self.say("Admin commands run in a terminal: sora-bot admin --help")
        elif command.kind == "gallery":
            link = await self.service.gallery_link(self.who)
            minutes = self.service.settings.gallery_link_minutes
            self.say(f"Your gallery (opens once, within {minutes} minutes): {link}")
        else:
            return await self._order(command.text)
        return None

    def _jobs(self, jobs: list[Job]) -> None:
        if not jobs:
            self.say("No jobs yet. Try: /sora a paper boat on a rainy street")
        for job in jobs:
            self.say(
                f"{job.id}  {job.status.value:<10} {job.request.model} "
                f"{job.request.duration}s {job.request.aspect_ratio}  "
                f"{fmt_credits(job.charge)} cr  {job.request.prompt[:50]}"
            )

    async def _ask(self) -> None:
        if self.refused is None:
            self.failed = True
            self.say("Nothing to ask for: /ask follows a request refused for budget.")
            return
        approval = await self.service.ask_admin(self.who, self.refused, Surface(channel="console"))
        self.refused = None
        self.say(f"Asked the admins (request {approval.id}).")

    async def _order(self, text: str) -> Job:
        request = self.service.parse(text, requester=self.who)
        try:
            job = await self.service.submit(self.who, request, Surface(channel="console"))
        except BudgetError:
            self.refused = request
            raise
        self.port.watch(job.id)
        balance = await self.service.balance(self.who)
        self.say(
            f"[{job.id}] accepted: {request.model}, {request.duration}s, "
            f"{request.aspect_ratio}; {fmt_credits(job.reserved)} credits held, "
            f"{fmt_credits(balance.available)} left."
        )
        return job


HELP = """Commands (the leading / is optional; a line that is no command is a prompt):
  /sora <prompt> [--duration N] [--ar 16:9|9:16] [--model M] [--image URL] [--watermark]
  /credits   your allowance (limit + granted), used, held and left
  /jobs      your recent jobs
  /cancel ID cancel a job that has not finished
  /gallery   a private link to the web gallery of your videos (needs PUBLIC_BASE_URL)
  /ask       ask an admin for the last request refused for budget
  /help      this text
  /quit      leave"""
