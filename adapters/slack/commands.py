"""`/sora credits | jobs | help | cancel | gallery | admin …`: chat words → service calls → replies.

    /sora admin set-limit <@U123> 500       the user's allowance per period
    /sora admin grant <@U123> 50 [reason]   extra credits this period
    /sora admin team-budget 5000            the workspace's budget per period (0 = none)
    /sora admin usage [YYYY-MM-DD]          who spent what in this (or that day's) period
    /sora admin chart|export [YYYY-MM-DD]   the chart / the CSV as a file (see reports.py)
    /sora admin settings                    the workspace's settings, in a modal
                                            (settings_modal.py: bolt routes it there first)

Invariants: permissions are the core's (`bot.domain.permissions`, through `BotService`, which
raises `PermissionDenied`; reports are built by `BotService.report` with the actor).
The actor comes with Slack's facts (`SlackActors`); targets are always in the actor's
workspace. Every `BotError` comes back as its own plain words; nothing here touches Slack.
"""

from __future__ import annotations

import datetime as dt
import re

from adapters.slack import render
from bot.domain.chat_commands import ChatCommand
from bot.domain.errors import BotError, InputError, PermissionDenied
from bot.domain.models import Requester, fmt_credits
from bot.domain.permissions import ADMINS_ONLY
from bot.services.interface import BotService
from bot.services.reports import report_text

# `<@U123|name>` (escaped mention), `<@U123>`, or a bare `U123` / `W123` user id.
_USER_REF = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^@?([UW][A-Z0-9]{2,})$")
ADMIN_HELP = (
    "*Admin commands:*\n"
    "`/sora admin set-limit @user N` — the user's allowance per period\n"
    "`/sora admin grant @user N [reason]` — extra credits for this period\n"
    "`/sora admin team-budget N` — this workspace's budget per period (0 = no cap)\n"
    "`/sora admin usage [YYYY-MM-DD]` — who spent what this period (or that day's period)\n"
    "`/sora admin chart [YYYY-MM-DD]` — the spend per person as a chart, posted here\n"
    "`/sora admin export [YYYY-MM-DD]` — the period's usage as a CSV file, sent to you\n"
    "`/sora admin settings` — this workspace's settings (default model, allowance, team "
    "budget, period, time zone, admin channel, videos at once), in a form\n"
    "Requests people send with *Ask an admin* wait in your App Home (and the admin channel)."
)
REPORT_VERBS = ("chart", "export")


def parse_day(args: list[str]) -> dt.date | None:
    """The optional `YYYY-MM-DD` of a report command (any day inside the wanted period)."""
    if not args:
        return None
    if len(args) > 1:
        raise InputError("Give at most one date, like 2026-11-05.", field="period")
    try:
        return dt.date.fromisoformat(args[0])
    except ValueError:
        raise InputError(
            f"{args[0]!r} is not a date; use YYYY-MM-DD, like 2026-11-05.", field="period"
        ) from None


def user_ref(text: str, workspace: str) -> Requester:
    match = _USER_REF.match(text.strip())
    if match is None:
        raise InputError(
            f"{text!r} is not a Slack user: mention them (@name) or give their id (U…).",
            field="user",
        )
    return Requester(platform="slack", workspace=workspace, user=match.group(1) or match.group(2))


async def run_text_command(service: BotService, requester: Requester, command: ChatCommand) -> str:
    """Reply text for every command kind except `video` (which the handlers run)."""
    try:
        if command.kind == "help":
            return "```" + service.usage_text(requester=requester) + "```"
        if command.kind == "credits":
            return render.balance_text(await service.balance(requester))
        if command.kind == "jobs":
            jobs = await service.recent_jobs(requester, limit=10)
            return render.jobs_text(jobs)
        if command.kind == "cancel":
            if not command.args:
                return "Which job? `/sora cancel <job id>` (the id is under the progress message)."
            job = await service.cancel(command.args[0], requester)
            return f"Job `{job.id}` is cancelled; its credits were returned."
        if command.kind == "admin":
            return await run_admin(service, requester, command.args)
        if command.kind == "gallery":
            return gallery_text(await service.gallery_link(requester), service)
    except BotError as err:
        return f":warning: {err}"
    return "```" + service.usage_text(requester=requester) + "```"


def gallery_text(link: str, service: BotService) -> str:
    minutes = service.settings.gallery_link_minutes
    return (
        f":frame_with_picture: <{link}|Open your workspace's video gallery> — a private link "
        f"for you only: it opens once, within {minutes} minutes. Ask again for a new one."
    )


async def run_admin(service: BotService, actor: Requester, args: list[str]) -> str:
    """Each verb is a checked service call; the help is for those the core calls admins."""
    verb = args[0].casefold() if args else "help"
    rest = args[1:]
    workspace = actor.workspace
    if verb == "set-limit" and len(rest) == 2:
        target = user_ref(rest[0], workspace)
        await service.set_limit(actor, target, rest[1])
        return f"<@{target.user}>'s allowance is now {rest[1]} credits per period."
    if verb == "grant" and len(rest) >= 2:
        target = user_ref(rest[0], workspace)
        reason = " ".join(rest[2:])
        await service.grant(actor, target, rest[1], reason)
        balance = await service.balance(target)
        return (
            f"Granted {rest[1]} credits to <@{target.user}>"
            + (f" ({render.esc(reason)})" if reason else "")
            + f"; they have {fmt_credits(balance.available)} left this period."
        )
    if verb in ("team-budget", "set-team-budget") and len(rest) == 1:
        await service.set_team_budget(actor, "slack", workspace, rest[0])
        return f"This workspace's budget is now {rest[0]} credits per period (0 = no cap)."
    if verb == "usage":
        report = await service.report(actor, "slack", workspace, day=parse_day(rest))
        # Display names are typed by users: escaped, and unable to close the code block.
        table = render.esc(report_text(report)).replace("```", "'''")
        return "*Team usage*\n```" + table + "```"
    if not service.may_administer(actor):
        raise PermissionDenied(ADMINS_ONLY)
    return ADMIN_HELP
