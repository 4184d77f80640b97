"""Block Kit for what the core tells Slack users: pure functions from core models to payloads.

Invariants:
- Nothing here talks to Slack or the store; the same inputs always give the same payload, so
  the port can compare renders to skip `chat.update` calls that would change nothing.
- Every user-supplied string (prompts, names, error reasons) is escaped for mrkdwn (`&`, `<`,
  `>`), so a prompt cannot ping `<!channel>` or forge links.
- Texts stay inside Block Kit limits (section text ≤ 3000 characters, ≤ 50 blocks in a
  message, ≤ 100 in a Home tab); long prompts are shortened for display only.
- Buttons carry only the job id (`value`); who may press them is decided by the core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from bot.domain.models import Balance, DeliveredVideo, Job, JobStatus, VideoRequest, fmt_credits
from bot.services.ledger import UsageRow

ACTION_CANCEL = "sora_cancel"
ACTION_AGAIN = "sora_again"
ACTION_REMIX = "sora_remix"

Block = dict[str, Any]

_STATUS_WORDS = {
    JobStatus.PENDING: ":hourglass_flowing_sand: Queued",
    JobStatus.SUBMITTED: ":clapper: Rendering",
    JobStatus.DELIVERING: ":outbox_tray: Posting the video",
    JobStatus.DELIVERED: ":white_check_mark: Delivered",
    JobStatus.FAILED: ":x: Failed",
    JobStatus.CANCELLED: ":no_entry_sign: Cancelled",
}
_PROMPT_SHOWN = 600
_HOME_JOBS = 10
_HOME_USAGE_ROWS = 40


def esc(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def short(text: str, limit: int = _PROMPT_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": short(text, 3000)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": short(text, 3000)}]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def when(moment: dt.datetime, fallback: str | None = None) -> str:
    """A date in the reader's own time zone (Slack's date formatting)."""
    stamp = int(moment.timestamp())
    text = fallback or moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{text}>"


def request_line(job: Job) -> str:
    return request_line_of(job.request)


def request_line_of(req: VideoRequest) -> str:
    parts = [f"`{req.model}`", f"{req.duration} s", req.aspect_ratio]
    if req.image_url:
        parts.append("from an image")
    return " · ".join(parts)


def credits_line(job: Job) -> str:
    if job.charged_uc is not None:
        return f"{fmt_credits(job.charged_uc)} credits charged"
    if job.status.terminal:
        return "no credits charged"
    return f"{fmt_credits(job.reserved_uc)} credits held"


def progress_bar(percent: int, width: int = 20) -> str:
    filled = max(0, min(width, round(percent * width / 100)))
    return "█" * filled + "░" * (width - filled)


def status_line(job: Job) -> str:
    words = _STATUS_WORDS[job.status]
    if job.status == JobStatus.PENDING and job.queued and job.queue_position:
        return f"{words} — #{job.queue_position} in line"
    if job.status == JobStatus.SUBMITTED:
        shown = job.shown_progress  # `~40% (estimate)` between EvoLink's reads
        return f"{words} `{progress_bar(shown.percent)}` {shown.text}"
    if job.status == JobStatus.FAILED and job.error:
        return f"{words}: {esc(job.error)}"
    return words


def progress_message(job: Job, *, remixable: bool) -> tuple[str, list[Block]]:
    """The one message that follows a job in the channel: (fallback text, blocks)."""
    who = f"<@{job.requester.user}>"
    prompt = esc(short(job.request.prompt))
    blocks: list[Block] = [
        mrkdwn(f"{who} asked for a video:\n>{prompt}"),
        mrkdwn(status_line(job)),
        context(f"{request_line(job)} · {credits_line(job)} · job `{job.id}`"),
    ]
    buttons = job_buttons(job, remixable=remixable)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"job:{job.id}", "elements": buttons})
    head = status_line(job) if job.status == JobStatus.PENDING else _STATUS_WORDS[job.status]
    text = f"{head}: {short(job.request.prompt, 150)}"
    return text, blocks


def job_buttons(job: Job, *, remixable: bool) -> list[Block]:
    if not job.status.terminal:  # Cancel only while the core says so (not yet at EvoLink)
        return [button("Cancel", ACTION_CANCEL, job.id, "danger")] if job.cancellable else []
    buttons = [button("Again", ACTION_AGAIN, job.id)]
    if remixable and job.status == JobStatus.DELIVERED and job.task_id:
        buttons.append(button("Remix", ACTION_REMIX, job.id, "primary"))
    return buttons


def left_line(balance: Balance) -> str:
    resets = when(balance.resets_at)
    return f"{fmt_credits(balance.spendable)} credits left until {resets}"


def delivered_comment(job: Job, balance: Balance) -> str:
    """The comment that goes with the uploaded MP4."""
    charged = job.charge
    return (
        f"<@{job.requester.user}> your video is ready: _{esc(short(job.request.prompt, 300))}_\n"
        f"`{job.request.model}` · {job.request.duration} s · {job.request.aspect_ratio} · "
        f"{fmt_credits(charged)} credits charged · {left_line(balance)}"
    )


def link_message(job: Job, video: DeliveredVideo, balance: Balance, why: str) -> str:
    """The fallback when the file cannot be uploaded: our hosted link, else EvoLink's."""
    head = delivered_comment(job, balance)
    if video.hosted_url:
        return f"{head}\n{why} Watch or download it here: {video.hosted_url}"
    if video.source_url:
        expiry = (
            f"until {when(video.source_expires_at)}" if video.source_expires_at else "for 24 hours"
        )
        return (
            f"{head}\n{why} EvoLink's link works {expiry}; download it before then: "
            f"{video.source_url}"
        )
    return f"{head}\n{why} No download link is available; ask an admin for job `{job.id}`."


# With the job id, how the port finds its failure / cancel notice again after a crash.
FAILED_WORDS = "could not be made"
CANCELLED_WORDS = "was cancelled"


def failed_message(job: Job, reason: str, balance: Balance) -> str:
    return (
        f"<@{job.requester.user}> the video {FAILED_WORDS} (job `{job.id}`): {esc(reason)}\n"
        f"Your {fmt_credits(job.reserved_uc)} held credits were returned; {left_line(balance)}."
    )


def cancelled_message(job: Job, balance: Balance) -> str:
    return (
        f"Job `{job.id}` {CANCELLED_WORDS}; its credits were returned. "
        f"<@{job.requester.user}> has {left_line(balance)}."
    )


def balance_text(balance: Balance) -> str:
    lines = [
        f"*Your credits this period* (since {balance.period_start.isoformat()}):",
        f"allowance {fmt_credits(balance.limit)}"
        + (f" + {fmt_credits(balance.granted)} granted" if balance.granted else "")
        + f" · used {fmt_credits(balance.used)} · held {fmt_credits(balance.held)}"
        + (f" ({fmt_credits(balance.queued)} of it for queued jobs)" if balance.queued else "")
        + f" · left {fmt_credits(balance.available)}",
    ]
    team_left = balance.team_available
    if team_left is not None and balance.team_budget is not None:
        lines.append(
            f"Team budget {fmt_credits(balance.team_budget)} · team left {fmt_credits(team_left)}"
        )
    lines.append(f"Resets {when(balance.resets_at)}.")
    return "\n".join(lines)


def job_line(job: Job, link: str | None = None) -> str:
    """One job for lists; `link` is where the video can be watched (our /media link)."""
    shown = f" · <{link}|watch>" if link else ""
    created = job.created_at.strftime("%Y-%m-%d %H:%M")
    return (
        f"`{job.id}` {created} · *{job.status.value}* · {request_line(job)} · "
        f"{credits_line(job)}{shown}\n>{esc(short(job.request.prompt, 150))}"
    )


def jobs_text(jobs: Sequence[Job], links: Mapping[str, str] | None = None) -> str:
    if not jobs:
        return "You have no videos yet. Try `/sora a paper boat on a rainy street`."
    links = links or {}
    return "*Your recent videos:*\n" + "\n".join(job_line(j, links.get(j.id)) for j in jobs)


def usage_lines(rows: Sequence[UsageRow]) -> list[str]:
    """One line per person (at most `_HOME_USAGE_ROWS`, then a pointer to the CLI)."""
    if not rows:
        return ["Nobody has used credits this period."]
    lines = []
    for row in rows[:_HOME_USAGE_ROWS]:
        lines.append(
            f"<@{row.user}> · {row.jobs} jobs · used {fmt_credits(row.used)} · "
            f"held {fmt_credits(row.reserved)} · limit {fmt_credits(row.limit)}"
            + (f" + {fmt_credits(row.granted)}" if row.granted else "")
            + f" · left {fmt_credits(row.available)}"
        )
    if len(rows) > _HOME_USAGE_ROWS:
        lines.append(f"… and {len(rows) - _HOME_USAGE_ROWS} more (`sora-bot admin usage`).")
    return lines


def usage_text(rows: Sequence[UsageRow]) -> str:
    return "*Team usage this period:*\n" + "\n".join(usage_lines(rows))


def home_view(
    balance: Balance,
    jobs: Sequence[Job],
    usage: Sequence[UsageRow] | None,
    links: Mapping[str, str] | None = None,
    admin_blocks: Sequence[Block] = (),
) -> dict[str, Any]:
    """The App Home tab: the user's figures, recent jobs, and for admins the requests waiting
    for a decision (`admin_blocks`) and the team's usage."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your video credits"}},
        mrkdwn(balance_text(balance)),
        {"type": "divider"},
        mrkdwn("*Recent videos*"),
    ]
    if jobs:
        links = links or {}
        blocks.extend(mrkdwn(job_line(job, links.get(job.id))) for job in jobs[:_HOME_JOBS])
    else:
        blocks.append(mrkdwn("No videos yet. Type `/sora` in any channel to make one."))
    blocks.extend(admin_blocks)
    if usage is not None:
        blocks.append({"type": "divider"})
        blocks.append(mrkdwn("*Team usage this period* (you are an admin)"))
        lines = usage_lines(usage)
        # Ten people per section keeps each section far below its 3000-character limit.
        for start in range(0, len(lines), 10):
            blocks.append(mrkdwn("\n".join(lines[start : start + 10])))
    blocks.append(context("`/sora help` lists the options · `/sora credits` shows this anywhere"))
    return {"type": "home", "blocks": blocks}
