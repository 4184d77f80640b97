"""From a Discord interaction to a core call and back: shared by commands, buttons and modals.

Invariants:
- Every interaction gets its first response within Discord's 3 seconds: input is checked
  first (pure CPU work on the catalog, no I/O) so a bad option can be refused with an
  ephemeral message; otherwise `defer()` goes out before anything touches the store.
- Refusals (`BotError`) are shown only to the person who asked, in the core's words.
- The adapter decides nothing about budgets or permissions: the actor it passes carries the
  facts Discord gives (`requester_of`: the Manage Server permission in this guild as
  `workspace_admin`); the core decides what they allow.
- A budget refusal of /sora, Again or Remix offers "Ask an admin" (asking.py) when someone
  can be asked; every other refusal is the core's words only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from adapters.discord import render
from adapters.discord.asking import RequestFor, offer_ask
from adapters.discord.surface import DiscordSurface, requester_of
from bot.domain.errors import BotError, BudgetError, InputError, JobStateError
from bot.domain.models import Job, Requester, Surface, VideoRequest, fmt_credits
from bot.domain.requests import RequestOptions, remix_options
from bot.infra.logs import bind_job

if TYPE_CHECKING:
    from adapters.discord.port import DiscordPort
    from bot.services.interface import BotService

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
IMAGE_MAX_BYTES = 10 * 1024 * 1024

Submit = Callable[[Surface], Awaitable[Job]]


def service_of(interaction: discord.Interaction[Any]) -> BotService:
    service: BotService = interaction.client.service
    return service


def port_of(interaction: discord.Interaction[Any]) -> DiscordPort:
    port: DiscordPort = interaction.client.port
    return port


def track(interaction: discord.Interaction[Any]) -> None:
    """Count the running handler as in flight, so a shutdown can let it finish first."""
    task = asyncio.current_task()
    inflight: set[asyncio.Task[Any]] | None = getattr(interaction.client, "inflight", None)
    if task is not None and inflight is not None:
        inflight.add(task)
        task.add_done_callback(inflight.discard)


def check_image(image: discord.Attachment | None) -> str | None:
    """The attachment's URL if it is a jpg/png/webp of at most 10 MB; InputError otherwise."""
    if image is None:
        return None
    kind = (image.content_type or "").split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES and not (
        not kind and image.filename.lower().endswith(IMAGE_SUFFIXES)
    ):
        raise InputError(
            f"The image must be a JPG, PNG or WebP picture; {image.filename!r} is "
            f"{kind or 'of an unknown type'}.",
            field="image",
            valid=["jpg", "png", "webp"],
        )
    if image.size > IMAGE_MAX_BYTES:
        raise InputError(
            f"The image must be at most 10 MB; {image.filename!r} is "
            f"{image.size / (1024 * 1024):.1f} MB.",
            field="image",
        )
    return image.url


async def start_video(
    interaction: discord.Interaction[Any],
    *,
    prompt: str,
    duration: int | None,
    aspect_ratio: str | None,
    model: str | None,
    image: discord.Attachment | None,
    watermark: bool | None,
    quality: str | None = None,
    audio: bool | None = None,
) -> None:
    """`/sora`: the prompt may carry the chat flags; explicit options must agree with them."""
    service = service_of(interaction)
    requester = requester_of(interaction)
    try:
        alongside = RequestOptions(
            model=model,
            duration=duration,
            aspect_ratio=aspect_ratio,
            image_url=check_image(image),
            image_from_platform=image is not None,  # Discord's CDN link, not typed by anyone
            watermark=watermark,
            quality=quality,
            audio=audio,
        )
        request = service.parse(prompt, alongside, requester=requester)  # its guild's model
    except InputError as err:
        await interaction.response.send_message(render.input_error_text(err), ephemeral=True)
        return

    async def the_request() -> VideoRequest:
        return request

    await accept(
        interaction,
        lambda surface: service.submit(requester, request, surface),
        asking=(requester, the_request),
    )


async def accept(
    interaction: discord.Interaction[Any],
    submit: Submit,
    *,
    asking: tuple[Requester, RequestFor] | None = None,
) -> Job | None:
    """Defer, hand the core a surface, then show the accepted job (or the refusal).

    With `asking` (who, and how to rebuild the request), a budget refusal offers
    "Ask an admin" (asking.py)."""
    callback = await interaction.response.defer(thinking=True)
    message_id = callback.message_id if callback is not None else None
    if message_id is None:
        message_id = (await interaction.original_response()).id
    surface = DiscordSurface.from_interaction(interaction, message_id)
    try:
        job = await submit(surface.dump())
    except BudgetError as err:
        await refuse_after_defer(interaction, err, asking=asking)
        return None
    except BotError as err:
        await refuse_after_defer(interaction, err)
        return None
    bind_job(job.id)  # this handler's remaining log lines are about the job
    try:
        await port_of(interaction).show_status(job.id)
    except discord.HTTPException as exc:
        # The job is accepted and running; the next progress event will try again.
        log.warning("job %s: could not show the accepted job (HTTP %s)", job.id, exc.status)
    return job


async def refuse_after_defer(
    interaction: discord.Interaction[Any],
    err: BotError,
    *,
    asking: tuple[Requester, RequestFor] | None = None,
) -> None:
    """Replace the public "thinking…" message with a note only the user sees."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.debug("could not delete the deferred response", exc_info=True)
    if (
        isinstance(err, BudgetError)
        and asking is not None
        and await offer_ask(interaction, err, *asking)
    ):
        return
    await interaction.followup.send(error_text(err), ephemeral=True)


def error_text(err: BotError) -> str:
    if isinstance(err, BudgetError):
        return render.budget_error_text(err)
    if isinstance(err, InputError):
        return render.input_error_text(err)
    return render.clip(str(err), render.CONTENT_MAX)


async def cancel_job(interaction: discord.Interaction[Any], job_id: str) -> None:
    track(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    service = service_of(interaction)
    try:
        job = await service.cancel(job_id, requester_of(interaction))
    except BotError as err:
        await interaction.followup.send(error_text(err), ephemeral=True)
        return
    await interaction.followup.send(
        f"Cancelled. The {fmt_credits(job.reserved)} credits held for it were returned.",
        ephemeral=True,
    )


async def again_job(interaction: discord.Interaction[Any], job_id: str) -> None:
    track(interaction)
    service = service_of(interaction)
    actor = requester_of(interaction)

    async def same_request() -> VideoRequest:
        return (await service.get_job(job_id)).request

    await accept(
        interaction,
        lambda surface: service.again(job_id, actor, surface),
        asking=(actor, same_request),
    )


async def remix_job(interaction: discord.Interaction[Any], job_id: str, change: str) -> None:
    track(interaction)
    service = service_of(interaction)
    actor = requester_of(interaction)

    async def remix_request() -> VideoRequest:
        # What service.remix submits (it raised BudgetError, so the job is remixable).
        job = await service.get_job(job_id)
        model = service.catalog.remix_model_for(job.request.model)
        if model is None or job.task_id is None:
            raise JobStateError("Only a delivered video can be remixed.")
        return service.build(remix_options(job.request, model, job.task_id, change))

    await accept(
        interaction,
        lambda surface: service.remix(job_id, actor, change, surface),
        asking=(actor, remix_request),
    )


GENERIC_FAILURE = "Something went wrong on our side. Please try again in a moment."


async def report_unexpected(interaction: discord.Interaction[Any], exc: BaseException) -> None:
    """Log an unexpected error in full, tell the user only that something went wrong."""
    original = getattr(exc, "original", exc)
    if interaction.client.is_closed():
        log.info("interaction %s ended during shutdown: %r", interaction.id, original)
        return
    if isinstance(original, BotError):
        text = error_text(original)
    else:
        log.error("interaction %s failed", interaction.id, exc_info=original)
        text = GENERIC_FAILURE
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about the failure of interaction %s", interaction.id)
