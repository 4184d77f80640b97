"""What budget holders and requesters read about approvals and alerts. Pure functions, no I/O.

Invariants (as in render.py): Discord's length limits hold, credits go through `fmt_credits`,
user text (prompts) is clipped, never split. A decider is shown as a Discord mention when it is
a Discord user (`discord:<id>`), else as written (the CLI's actor name).
"""

from __future__ import annotations

import datetime as dt

import discord

from adapters.discord.render import CONTENT_MAX, FIELD_MAX, budget_error_text, clip, resets_text
from bot.domain.errors import BudgetError
from bot.domain.models import Balance, fmt_credits
from bot.services.alerts import Alert
from bot.services.approvals import Approval

PROMPT_IN_REQUEST = 900
PROMPT_IN_NOTE = 200

VERDICT = {
    "approved": ("✅", "Approved", discord.Colour.green()),
    "denied": ("🚫", "Denied", discord.Colour.red()),
    "expired": ("⌛", "Expired", discord.Colour.dark_grey()),
}


def who_decided(actor: str | None) -> str:
    if actor is None:
        return "nobody"
    platform, _, user = actor.partition(":")
    if platform == "discord" and user.isdigit():
        return f"<@{user}>"
    return f"`{actor}`"


def spend_text(balance: Balance) -> str:
    """That person's spend this period, as admins need it to decide."""
    allowance = balance.limit + balance.granted
    text = (
        f"used {fmt_credits(balance.used)}, held {fmt_credits(balance.held)} "
        f"of {fmt_credits(allowance)} (left {fmt_credits(balance.available)})"
    )
    if balance.team_budget is not None:
        left = balance.team_available
        text += (
            f"\nteam: {fmt_credits(left if left is not None else 0)} left of "
            f"{fmt_credits(balance.team_budget)}"
        )
    return clip(text, FIELD_MAX)


def approval_embed(approval: Approval, balance: Balance, *, where: str) -> discord.Embed:
    """The admins' message: who, what, price, their spend, expiry; `where` names the server."""
    who = approval.requester
    name = f" ({who.display_name})" if who.display_name else ""
    request = approval.request
    embed = discord.Embed(
        title=f"Credit request · {fmt_credits(approval.price)} credits",
        description=clip(
            f"<@{who.user}>{name} in {where} asks for a video that does not fit the budget:\n"
            f"> {clip(request.prompt, PROMPT_IN_REQUEST)}",
            4096,
        ),
        colour=discord.Colour.gold(),
    )
    embed.add_field(name="Model", value=request.model)
    embed.add_field(name="Duration", value=f"{request.duration} s")
    embed.add_field(name=request.frame[0], value=request.frame[1])
    embed.add_field(name="Price", value=f"{fmt_credits(approval.price)} credits")
    embed.add_field(name="Their spend this period", value=spend_text(balance), inline=False)
    embed.add_field(name="Expires", value=resets_text(approval.expires_at), inline=False)
    embed.set_footer(text=f"request {approval.id}")
    return embed


def decision_field(approval: Approval) -> tuple[str, str]:
    icon, word, _ = VERDICT.get(approval.status, ("❔", approval.status, None))
    when = approval.decided_at or dt.datetime.now(dt.UTC)
    stamp = f"<t:{int(when.timestamp())}:f>"
    if approval.status == "expired":
        return "Decision", f"{icon} {word}: nobody decided in time ({stamp})"
    text = f"{icon} {word} by {who_decided(approval.decided_by)} ({stamp})"
    if approval.job_id:
        text += f" · job `{approval.job_id}`"
    return "Decision", text


def decided_embed(before: discord.Embed | None, approval: Approval) -> discord.Embed:
    """The admins' message after the decision: the same facts plus who decided."""
    embed = before.copy() if before is not None else discord.Embed(title="Credit request")
    _, _, colour = VERDICT.get(approval.status, ("", "", discord.Colour.default()))
    embed.colour = colour
    name, value = decision_field(approval)
    embed.add_field(name=name, value=value, inline=False)
    return embed


def requester_note(approval: Approval) -> str:
    """What the requester is told when the request is decided or expires."""
    mention = f"<@{approval.requester.user}>"
    prompt = clip(approval.request.prompt, PROMPT_IN_NOTE)
    price = fmt_credits(approval.price)
    if approval.status == "approved":
        text = (
            f"{mention} an admin ({who_decided(approval.decided_by)}) approved your request: "
            f"{price} credits were granted and your video “{prompt}” is being made."
        )
    elif approval.status == "denied":
        text = (
            f"{mention} an admin declined your request for “{prompt}” ({price} credits). "
            "Nothing was charged."
        )
    else:
        text = (
            f"{mention} nobody decided on your request for “{prompt}” in time; "
            "nothing was charged. Ask again if you still need it."
        )
    return clip(text, CONTENT_MAX)


def asked_text(approval: Approval, *, reached: bool = True) -> str:
    """The requester's confirmation that the admins were asked (or why they may not know)."""
    if not reached:
        return clip(
            f"Your request `{approval.id}` is recorded, but the bot could not reach the admins "
            "on Discord: please tell one (they can decide with `sora-bot admin approve "
            f"{approval.id}`). It expires {resets_text(approval.expires_at)}.",
            CONTENT_MAX,
        )
    return clip(
        f"🙋 Asked the admins to approve {fmt_credits(approval.price)} credits for this video "
        f"(request `{approval.id}`). You will be told here when one decides; the request "
        f"expires {resets_text(approval.expires_at)}.",
        CONTENT_MAX,
    )


def ask_offer_text(refusal: BudgetError, minutes: int) -> str:
    """The refusal, with the offer: the button lives in this process's memory only."""
    return clip(
        f"{budget_error_text(refusal)}\n\nYou can ask an admin to approve exactly this "
        f"video: press **Ask an admin** (the button works for {minutes} minutes).",
        CONTENT_MAX,
    )


def already_decided_text(approval: Approval) -> str:
    if approval.status == "pending":
        return "This request has expired; nothing was changed."
    if approval.status == "expired":
        return "This request expired before anyone decided."
    return f"Already {approval.status} by {who_decided(approval.decided_by)}; nothing was changed."


def decided_ack_text(approval: Approval) -> str:
    if approval.status == "approved":
        return (
            f"Approved: {fmt_credits(approval.price)} credits granted to "
            f"<@{approval.requester.user}>; the video is being made."
        )
    return f"Denied: <@{approval.requester.user}> has been told."


def alert_text(alert: Alert, *, where: str) -> str:
    return clip(f"⚠️ **Budget alert** ({where}): {alert.text}", CONTENT_MAX)
