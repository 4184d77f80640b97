"""Block Kit for the budget holders' side: "Ask an admin", the admins' Approve/Deny message,
decisions, alerts and the pending requests in the App Home. Pure functions, like `render`.

Invariants:
- The "Ask an admin" button carries the refused request itself as JSON in its `value`
  (Slack's limit: 2000 characters), so nothing is stored until the user chooses to ask. The
  value is only a suggestion (a user can edit it): the click handler rebuilds the request
  through the core's one validation (`SoraService.build` → `validate_request`), image host
  rule included, so a forged or stale value can ask for nothing a typed request could not,
  and the price is the catalog's, never the button's.
- Approve/Deny buttons carry only the approval id (`value`, and the block id); who may
  decide, and whether someone already did, is the core's decision.
- Every user-typed string (prompts, display names, alert texts) is escaped for mrkdwn.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.slack.render import Block, button, context, esc, mrkdwn, request_line_of, short, when
from bot.domain.catalog import Catalog
from bot.domain.errors import InputError
from bot.domain.models import Balance, VideoRequest, fmt_credits
from bot.domain.requests import RequestOptions, options_of
from bot.services.alerts import Alert
from bot.services.approvals import Approval

ACTION_ASK = "sora_ask_admin"
ACTION_APPROVE = "sora_approve"
ACTION_DENY = "sora_deny"
VALUE_LIMIT = 2000  # a button's value, in characters
HOME_APPROVALS = 10  # the Home tab holds at most 100 blocks
_ACTOR = re.compile(r"\bslack:([UW][A-Z0-9]+)\b")


@dataclass(frozen=True)
class AskedRequest:
    """What an "Ask an admin" button carries: the request's options, unchecked, and where it
    was made. The image link is never marked as the platform's: it is checked as typed."""

    options: RequestOptions
    channel: str | None = None


def ask_value(asked: AskedRequest) -> str | None:
    """The button value for `asked`, or None when it would not fit Slack's limit."""
    o = asked.options  # never a remix's base task: remixing is checked against the job
    data: dict[str, Any] = {
        "v": 1,
        "p": o.prompt,
        "m": o.model,
        "d": o.duration,
        "ar": o.aspect_ratio,
        "img": o.image_url,
        "wm": o.watermark,
        "rs": o.resize_mode,
        "ch": asked.channel,
    }
    text = json.dumps(
        {k: v for k, v in data.items() if v is not None}, ensure_ascii=False, separators=(",", ":")
    )
    return text if len(text) <= VALUE_LIMIT else None


def ask_value_of(request: VideoRequest, channel: str | None, catalog: Catalog) -> str | None:
    """The button value for a refused `request` made in `channel`."""
    return ask_value(AskedRequest(options_of(request, catalog), channel))


def read_ask_value(value: str) -> AskedRequest:
    """The inverse of `ask_value`; InputError when the value is not one of ours."""
    try:
        data = json.loads(value)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown version")
        options = RequestOptions(
            prompt=str(data["p"]),
            model=str(data["m"]),
            duration=int(data["d"]),
            aspect_ratio=str(data["ar"]),
            image_url=_opt_str(data.get("img")),
            watermark=data["wm"] if isinstance(data.get("wm"), bool) else None,
            resize_mode=_opt_str(data.get("rs")),
        )
        return AskedRequest(options, channel=_opt_str(data.get("ch")))
    except (ValueError, KeyError, TypeError):
        raise InputError("That button no longer works; send the request again.") from None


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def refusal_blocks(message: str, value: str | None) -> list[Block]:
    """The private budget refusal, with "Ask an admin" when the request fits in the button."""
    blocks = [mrkdwn(message)]
    if value is None:
        blocks.append(
            context("This request is too long to pass on with a button; ask an admin directly.")
        )
        return blocks
    blocks.append(
        {
            "type": "actions",
            "block_id": "ask_admin",
            "elements": [button("Ask an admin", ACTION_ASK, value, "primary")],
        }
    )
    return blocks


def actor_name(actor: str | None) -> str:
    """`slack:U1` → a mention; the CLI's `cli:root` → `root (CLI)`."""
    if not actor:
        return "an admin"
    platform, _, user = actor.partition(":")
    if platform == "slack" and user:
        return f"<@{user}>"
    if platform == "cli" and user:
        return f"{esc(user)} (CLI)"
    return esc(actor)


def readable_refusal(message: str) -> str:
    """A core message naming an actor id (`already approved by slack:U1`) with a mention."""
    return _ACTOR.sub(lambda m: f"<@{m.group(1)}>", message)


def asked_note(approval: Approval) -> str:
    """What the requester sees once their request went to the admins."""
    return (
        f":raising_hand: I asked the admins for {fmt_credits(approval.price)} credits for "
        f"_{esc(short(approval.request.prompt, 150))}_. You will hear from me in a direct "
        f"message once one decides (the request expires {when(approval.expires_at)})."
    )


def _summary(approval: Approval) -> list[Block]:
    req: VideoRequest = approval.request
    return [
        mrkdwn(
            f":raising_hand: <@{approval.requester.user}> asks for a video that does not fit "
            f"their budget:\n>{esc(short(req.prompt))}"
        ),
        mrkdwn(f"{request_line_of(req)} · price *{fmt_credits(approval.price)} credits*"),
    ]


def spend_line(balance: Balance) -> str:
    allowance = fmt_credits(balance.limit) + (
        f" + {fmt_credits(balance.granted)} granted" if balance.granted else ""
    )
    line = (
        f"Their spend this period: used {fmt_credits(balance.used)} · held "
        f"{fmt_credits(balance.held)} · allowance {allowance} · left "
        f"{fmt_credits(balance.available)}"
    )
    team_left = balance.team_available
    if balance.team_budget is not None and team_left is not None:
        line += f"\nTeam: budget {fmt_credits(balance.team_budget)} · left {fmt_credits(team_left)}"
    return line


def approval_message(approval: Approval, balance: Balance) -> tuple[str, list[Block]]:
    """The admins' message: who, what, price, their spend, expiry; Approve / Deny."""
    blocks = _summary(approval)
    blocks.append(mrkdwn(spend_line(balance)))
    blocks.append(
        context(
            f"Approving grants exactly {fmt_credits(approval.price)} credits and starts the "
            f"video · expires {when(approval.expires_at)} · request `{approval.id}`"
        )
    )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approval:{approval.id}",
            "elements": [
                button("Approve", ACTION_APPROVE, approval.id, "primary"),
                button("Deny", ACTION_DENY, approval.id, "danger"),
            ],
        }
    )
    text = (
        f"Approval needed: {approval.requester.display_name or approval.requester.user} asks "
        f"for {fmt_credits(approval.price)} credits"
    )
    return text, blocks


def decision_line(approval: Approval) -> str:
    who = actor_name(approval.decided_by)
    if approval.status == "approved":
        job = f" (job `{approval.job_id}`)" if approval.job_id else ""
        return (
            f":white_check_mark: Approved by {who}: {fmt_credits(approval.price)} credits "
            f"granted and the video started{job}."
        )
    if approval.status == "denied":
        return f":no_entry: Declined by {who}."
    if approval.status == "expired":
        return ":hourglass: Expired: nobody decided in time."
    return ":hourglass_flowing_sand: Waiting for a decision."


def decided_message(approval: Approval) -> tuple[str, list[Block]]:
    """The admins' message after the decision: the same summary, no buttons."""
    blocks = _summary(approval)
    blocks.append(mrkdwn(decision_line(approval)))
    blocks.append(context(f"request `{approval.id}`"))
    return decision_line(approval), blocks


def requester_note(approval: Approval) -> str:
    """What the requester is told about the decision."""
    what = f"_{esc(short(approval.request.prompt, 150))}_"
    price = fmt_credits(approval.price)
    who = actor_name(approval.decided_by)
    if approval.status == "approved":
        where = f" in <#{approval.surface.channel}>" if approval.surface.channel else " here"
        return (
            f":white_check_mark: {who} approved your request for {what} ({price} credits): "
            f"your video is being made and will appear{where}."
        )
    if approval.status == "denied":
        return f":no_entry: {who} declined your request for {what} ({price} credits)."
    return (
        f":hourglass: Nobody decided on your request for {what} ({price} credits) in time, "
        "so it expired. Ask again if you still need it."
    )


def alert_text(alert: Alert) -> str:
    who = f" (<@{alert.user}>)" if alert.user and alert.platform == "slack" else ""
    return f":rotating_light: *Budget alert*{who}: {esc(alert.text)}"


def home_approvals(approvals: Sequence[Approval], now: dt.datetime) -> list[Block]:
    """Pending requests for the admins' Home tab, oldest first, each with its buttons."""
    if not approvals:
        return []
    blocks: list[Block] = [
        {"type": "divider"},
        mrkdwn(f"*Requests waiting for your decision* ({len(approvals)})"),
    ]
    for approval in approvals[:HOME_APPROVALS]:
        req = approval.request
        left = max(0, int((approval.expires_at - now).total_seconds() // 60))
        blocks.append(
            mrkdwn(
                f"<@{approval.requester.user}> · {fmt_credits(approval.price)} credits · "
                f"{request_line_of(req)} · expires in {left} min\n>{esc(short(req.prompt, 300))}"
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval:{approval.id}",
                "elements": [
                    button("Approve", ACTION_APPROVE, approval.id, "primary"),
                    button("Deny", ACTION_DENY, approval.id, "danger"),
                ],
            }
        )
    if len(approvals) > HOME_APPROVALS:
        blocks.append(
            context(f"… and {len(approvals) - HOME_APPROVALS} more (`sora-bot admin approvals`).")
        )
    return blocks
