"""Core objects → Discord embeds and text. Pure functions: no I/O, no client, easy to test.

Invariants:
- Every text respects Discord's limits: content ≤ 2000 chars, embed description ≤ 4096,
  field value ≤ 1024, title ≤ 256; user text (prompts, reasons) is truncated, never split.
- Credits are shown with `fmt_credits` (exact Decimal), never through float.
- A link to a video is the bot's hosted `/media` link when there is one; EvoLink's own link
  is shown only when nothing else exists, and then with its expiry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import discord

from bot.domain.errors import BudgetError, InputError
from bot.domain.models import Balance, DeliveredVideo, Job, JobStatus, fmt_credits

BAR_CELLS = 12
CONTENT_MAX = 2000
DESCRIPTION_MAX = 4096
FIELD_MAX = 1024
PROMPT_SHOWN = 1500

COLOUR = {
    JobStatus.PENDING: discord.Colour.light_grey(),
    JobStatus.SUBMITTED: discord.Colour.blurple(),
    JobStatus.DELIVERING: discord.Colour.blurple(),
    JobStatus.DELIVERED: discord.Colour.green(),
    JobStatus.FAILED: discord.Colour.red(),
    JobStatus.CANCELLED: discord.Colour.dark_grey(),
}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_bar(percent: int, *, estimated: bool = False) -> str:
    """`▰▰▰▱▱▱▱▱▱▱▱▱ 25%`: a fixed-width bar, so an edit only changes when progress does;
    `~25% (estimate)` when the figure is the core's estimate between EvoLink's reads."""
    pct = max(0, min(100, percent))
    full = round(pct * BAR_CELLS / 100)
    figure = f"~{pct}% (estimate)" if estimated else f"{pct}%"
    return "▰" * full + "▱" * (BAR_CELLS - full) + f" {figure}"


def status_line(job: Job) -> str:
    match job.status:
        case JobStatus.PENDING if job.queued and job.queue_position is not None:
            return f"🕒 Queued — #{job.queue_position} in line"
        case JobStatus.PENDING:
            return "⏳ Accepted, sending to the video service…"
        case JobStatus.SUBMITTED:
            shown = job.shown_progress
            return f"🎬 Generating… {progress_bar(shown.percent, estimated=shown.estimated)}"
        case JobStatus.DELIVERING:
            return f"📦 Ready, posting the video… {progress_bar(100)}"
        case JobStatus.DELIVERED:
            return "✅ Delivered"
        case JobStatus.FAILED:
            return "❌ Failed"
        case JobStatus.CANCELLED:
            return "🚫 Cancelled"
    return str(job.status)


def job_embed(
    job: Job, balance: Balance | None = None, *, note: str | None = None
) -> discord.Embed:
    """The job's one status message: prompt, options, credits, and a progress bar."""
    request = job.request
    lines = [status_line(job), "", f"> {clip(request.prompt, PROMPT_SHOWN)}"]
    if note:
        lines += ["", note]
    embed = discord.Embed(
        title=f"/sora · {request.model}",
        description=clip("\n".join(lines), DESCRIPTION_MAX),
        colour=COLOUR.get(job.status, discord.Colour.default()),
    )
    embed.add_field(name="Duration", value=f"{request.duration} s")
    embed.add_field(name=request.frame[0], value=request.frame[1])
    if job.status == JobStatus.DELIVERED:
        embed.add_field(name="Charged", value=f"{fmt_credits(job.charge)} credits")
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        embed.add_field(name="Credits", value=f"{fmt_credits(job.reserved)} returned")
    else:
        embed.add_field(name="Credits held", value=fmt_credits(job.reserved))
    if balance is not None:
        embed.add_field(name="Left this period", value=left_text(balance))
    if request.image_url:
        embed.add_field(name="Image", value="first frame from your image", inline=False)
    embed.set_footer(text=f"job {job.id}")
    return embed


def left_text(balance: Balance) -> str:
    text = f"{fmt_credits(balance.spendable)} credits"
    if balance.team_available is not None and balance.team_available < balance.available:
        text += " (team budget)"
    return text


def resets_text(when: dt.datetime) -> str:
    stamp = int(when.timestamp())
    return f"<t:{stamp}:f> (<t:{stamp}:R>)"


def delivered_text(job: Job, video: DeliveredVideo, *, mention: str, as_file: bool) -> str:
    """The message that carries the video (as the attachment) or its lasting link."""
    head = f"{mention} your video is ready: “{clip(job.request.prompt, 200)}”"
    if as_file:
        return clip(head, CONTENT_MAX)
    if video.hosted_url:
        return clip(
            f"{head}\nIt is too big to upload here; watch or download it: {video.hosted_url}",
            CONTENT_MAX,
        )
    if video.source_url:
        expiry = ""
        if video.source_expires_at is not None:
            expiry = f" The link expires {resets_text(video.source_expires_at)}; save the video."
        return clip(
            f"{head}\nIt is too big to upload here: {video.source_url}{expiry}", CONTENT_MAX
        )
    return clip(
        f"{head}\nIt is too big to upload here and no link is available; ask an "
        "admin to set PUBLIC_BASE_URL.",
        CONTENT_MAX,
    )


FAILED_WORDS = "could not be made"  # with the job id: how a failure notice is found again


def failed_text(job: Job, reason: str, balance: Balance, *, mention: str) -> str:
    """The failure notice; it names the job before the reason, so clipping never drops it."""
    return clip(
        f"{mention} your video {FAILED_WORDS} (job `{job.id}`): {reason}\n"
        f"The {fmt_credits(job.reserved)} credits held for it were returned; "
        f"you have {left_text(balance)} left.",
        CONTENT_MAX,
    )


def input_error_text(err: InputError) -> str:
    text = str(err)
    if err.field and f"`{err.field}`" not in text:
        text = f"**{option_name(err.field)}**: {text}"
    return clip(text, CONTENT_MAX)


def budget_error_text(err: BudgetError) -> str:
    # The core's words say price, what is left and the reset date; Discord adds "in 9 days".
    return clip(f"{err} (<t:{int(err.resets_at.timestamp())}:R>)", CONTENT_MAX)


def option_name(field: str) -> str:
    """A core field name as the Discord option the user typed."""
    return {"image_url": "image", "prompt": "prompt"}.get(field, field)


def balance_embed(balance: Balance) -> discord.Embed:
    embed = discord.Embed(title="Your video credits", colour=discord.Colour.blurple())
    embed.add_field(name="Allowance", value=fmt_credits(balance.limit + balance.granted))
    embed.add_field(name="Used", value=fmt_credits(balance.used))
    embed.add_field(name="Held", value=held_text(balance))
    embed.add_field(name="Left", value=fmt_credits(balance.available))
    if balance.team_budget is not None:
        team_left = balance.team_available
        embed.add_field(
            name="Team budget",
            value=f"{fmt_credits(balance.team_budget)} "
            f"({fmt_credits(team_left if team_left is not None else 0)} left)",
        )
    embed.add_field(name="Resets", value=resets_text(balance.resets_at), inline=False)
    return embed


def held_text(balance: Balance) -> str:
    """Held credits, with the part waiting in the queue named (it is still held)."""
    text = fmt_credits(balance.held)
    if balance.queued > 0:
        text += f" ({fmt_credits(balance.queued)} queued)"
    return text


def jobs_embed(jobs: Sequence[Job], links: dict[str, str]) -> discord.Embed:
    """Recent jobs, newest first; `links` maps job id → a link to its video."""
    embed = discord.Embed(title="Your recent videos", colour=discord.Colour.blurple())
    if not jobs:
        embed.description = "No videos yet. Try `/sora prompt: a paper boat on a rainy street`."
        return embed
    lines = []
    for job in jobs:
        stamp = int(job.created_at.timestamp())
        link = f" · [video]({links[job.id]})" if job.id in links else ""
        reason = f" — {clip(job.error, 80)}" if job.error else ""
        lines.append(
            f"`{job.id}` <t:{stamp}:R> **{job.status}**{reason} · {job.request.model} "
            f"{job.request.duration}s · {clip(job.request.prompt, 60)}{link}"
        )
    embed.description = clip("\n".join(lines), DESCRIPTION_MAX)
    return embed
