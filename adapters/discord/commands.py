"""The application commands: `/sora`, `/sora-credits`, `/sora-jobs`, `/sora-gallery`;
`/sora-admin …` is in admin_commands.py. `/sora`'s prompt is read by the one chat parser first:
`prompt:help`, `prompt:credits`, `prompt:jobs`, `prompt:cancel <id>`, `prompt:gallery` answer
as on Slack and the console (the same answers as `/sora-credits`, `/sora-jobs`,
`/sora-gallery`, the Cancel button), never order a video.

Choices come from the catalog at run time (autocomplete), so an operator's catalog change
needs no re-registration; `duration` and `aspect_ratio` suggestions narrow to the model
already chosen in the same command (`interaction.namespace.model`).

Invariants:
- Autocomplete answers from memory only (it cannot be deferred); it suggests, the core's
  validation decides.
- Every request and balance query carries the member's role ids (role allowances).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from adapters.discord import flow, render
from adapters.discord.admin_commands import AdminCommands
from adapters.discord.surface import PLATFORM, requester_of, workspace_of
from bot.domain.catalog import ModelSpec
from bot.domain.chat_commands import ChatCommand
from bot.domain.errors import BotError
from bot.domain.models import JobStatus, fmt_credits

log = logging.getLogger(__name__)
MAX_CHOICES = 25


def _spec_for(interaction: discord.Interaction[Any]) -> ModelSpec:
    service = flow.service_of(interaction)
    chosen = getattr(interaction.namespace, "model", None)
    spec = service.catalog.find(chosen) if isinstance(chosen, str) else None
    if spec is None or not spec.selectable:  # the default model of this server
        spec = service.catalog.get(service.default_model_for(PLATFORM, workspace_of(interaction)))
    return spec


async def model_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    service = flow.service_of(interaction)
    offered = set(service.orderable_models())
    needle = current.casefold()
    return [
        app_commands.Choice(name=f"{spec.label} ({spec.name})", value=spec.name)
        for spec in service.catalog.models
        if spec.name in offered
        and (needle in spec.name.casefold() or needle in spec.label.casefold())
    ][:MAX_CHOICES]


async def duration_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[int]]:
    service = flow.service_of(interaction)
    spec = _spec_for(interaction)
    choices = []
    for d in spec.durations:
        if not str(d).startswith(current.strip()):
            continue
        price = service.default_price(spec.name, d)
        cost = "" if price is None else f" · {fmt_credits(price)} credits"
        choices.append(app_commands.Choice(name=f"{d} s{cost}", value=d))
    return choices[:MAX_CHOICES]


async def quality_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    spec = _spec_for(interaction)
    return [
        app_commands.Choice(name=quality, value=quality)
        for quality in spec.qualities
        if current.strip().casefold() in quality.casefold()
    ][:MAX_CHOICES]


async def ratio_autocomplete(
    interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    spec = _spec_for(interaction)
    return [
        app_commands.Choice(name=ratio, value=ratio)
        for ratio in spec.aspect_ratios
        if current.strip().casefold() in ratio.casefold()
    ][:MAX_CHOICES]


@app_commands.command(name="sora", description="Make a video from a prompt")
@app_commands.describe(
    prompt="What should happen in the video (flags like --duration 10 --ar 16:9 work too)",
    duration="Length in seconds",
    aspect_ratio="Shape of the video, e.g. 16:9 or 9:16",
    model="Video model (default: the server's default)",
    image="A JPG/PNG/WebP first frame or reference image, at most 10 MB",
    watermark="Keep the provider's watermark (models with the option)",
    quality="Output quality, e.g. 720p or 1080p (models with the option)",
    audio="Generate audio (models with the option)",
)
@app_commands.autocomplete(model=model_autocomplete, aspect_ratio=ratio_autocomplete)
@app_commands.autocomplete(duration=duration_autocomplete)
@app_commands.autocomplete(quality=quality_autocomplete)
async def sora(
    interaction: discord.Interaction[Any],
    prompt: app_commands.Range[str, 1, 6000],
    duration: int | None = None,
    aspect_ratio: str | None = None,
    model: str | None = None,
    image: discord.Attachment | None = None,
    watermark: bool | None = None,
    quality: str | None = None,
    audio: bool | None = None,
) -> None:
    # `prompt:help`, `prompt:credits`… mean what they mean on every surface (the one chat
    # parser decides), never a video called "help".
    command = flow.service_of(interaction).parse_command(prompt)
    if command.kind != "video":
        await chat_command(interaction, command)
        return
    await flow.start_video(
        interaction,
        prompt=prompt,
        duration=duration,
        aspect_ratio=aspect_ratio,
        model=model,
        image=image,
        watermark=watermark,
        quality=quality,
        audio=audio,
    )


async def chat_command(interaction: discord.Interaction[Any], command: ChatCommand) -> None:
    """A chat sub-command typed as /sora's prompt: answered as its own command would be."""
    if command.kind == "credits":
        await answer_credits(interaction)
    elif command.kind == "jobs":
        await answer_jobs(interaction)
    elif command.kind == "cancel" and command.args:
        await flow.cancel_job(interaction, command.args[0])
    elif command.kind == "cancel":
        await interaction.response.send_message(
            "Which job? `/sora prompt:cancel <job id>` (the id is on the job's message), "
            "or press its Cancel button.",
            ephemeral=True,
        )
    elif command.kind == "admin":
        await interaction.response.send_message(
            "Admin commands are under `/sora-admin`.", ephemeral=True
        )
    elif command.kind == "gallery":
        await answer_gallery(interaction)
    else:
        fence = "```"
        requester = requester_of(interaction)  # the help names its server's default model
        usage = flow.service_of(interaction).usage_text(requester=requester)
        usage = usage.replace(fence, "'''")
        head = (
            "Also: `/sora-credits`, `/sora-jobs`, `/sora-gallery`, `/sora-admin`. Flags work in "
            "the prompt:\n"
        )
        body = render.clip(usage, render.CONTENT_MAX - len(head) - 2 * len(fence))
        await interaction.response.send_message(head + fence + body + fence, ephemeral=True)


@app_commands.command(name="sora-credits", description="Your video credits this period")
async def sora_credits(interaction: discord.Interaction[Any]) -> None:
    await answer_credits(interaction)


async def answer_credits(interaction: discord.Interaction[Any]) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    balance = await flow.service_of(interaction).balance(requester_of(interaction))
    await interaction.followup.send(embed=render.balance_embed(balance), ephemeral=True)


@app_commands.command(name="sora-jobs", description="Your recent videos")
async def sora_jobs(interaction: discord.Interaction[Any]) -> None:
    await answer_jobs(interaction)


async def answer_jobs(interaction: discord.Interaction[Any]) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)

    service = flow.service_of(interaction)
    jobs = await service.recent_jobs(requester_of(interaction), limit=10)
    links: dict[str, str] = {}
    for job in jobs:
        if job.status == JobStatus.DELIVERED:
            link = _video_link(interaction, job.id, job.media_path, job.result_url)
            if link:
                links[job.id] = link
    await interaction.followup.send(embed=render.jobs_embed(jobs, links), ephemeral=True)


def _video_link(
    interaction: discord.Interaction[Any],
    job_id: str,
    media_path: str | None,
    result_url: str | None,
) -> str | None:
    service = flow.service_of(interaction)
    if media_path and Path(media_path).is_file():
        hosted = service.host_file(Path(media_path), f"{job_id}.mp4")
        if hosted:
            return hosted
    return result_url


@app_commands.command(name="sora-gallery", description="A private link to this server's videos")
async def sora_gallery(interaction: discord.Interaction[Any]) -> None:
    await answer_gallery(interaction)


async def answer_gallery(interaction: discord.Interaction[Any]) -> None:
    """A single-use gallery link, for the member only (ephemeral, no link preview: a preview
    robot must not use the link up)."""
    service = flow.service_of(interaction)
    try:
        link = await service.gallery_link(requester_of(interaction))
    except BotError as err:
        await interaction.response.send_message(f"\N{WARNING SIGN} {err}", ephemeral=True)
        return
    minutes = service.settings.gallery_link_minutes
    await interaction.response.send_message(
        f"[Open this server's video gallery](<{link}>) — a private link for you only: it "
        f"opens once, within {minutes} minutes. Run `/sora-gallery` again for a new one.",
        ephemeral=True,
        suppress_embeds=True,
    )


def add_commands(tree: app_commands.CommandTree[Any]) -> None:
    tree.add_command(sora)
    tree.add_command(sora_credits)
    tree.add_command(sora_jobs)
    tree.add_command(sora_gallery)
    tree.add_command(AdminCommands())
