"""Pure rendering and surface bookkeeping: limits, links, token lifetime."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from adapters.discord import render
from adapters.discord.surface import DiscordSurface
from bot.domain.errors import InputError
from bot.domain.models import (
    Balance,
    DeliveredVideo,
    Job,
    JobStatus,
    Requester,
    Surface,
    VideoRequest,
)

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
WHO = Requester(platform="discord", workspace="1", user="2")


def job(status: JobStatus = JobStatus.SUBMITTED, progress: int = 40, prompt: str = "a boat") -> Job:
    return Job(
        id="j1",
        requester=WHO,
        surface=Surface(),
        status=status,
        progress=progress,
        request=VideoRequest(model="sora-2", prompt=prompt, duration=10, aspect_ratio="16:9"),
        reserved_uc=25_000,
        created_at=NOW,
    )


def balance() -> Balance:
    return Balance(
        requester=WHO,
        period_start=NOW.date(),
        resets_at=NOW + dt.timedelta(days=10),
        limit=Decimal(300),
        granted=Decimal(0),
        used=Decimal("57.6"),
        held=Decimal("2.5"),
    )


def test_progress_bar_has_a_fixed_width_and_clamps() -> None:
    assert render.progress_bar(0) == "▱" * 12 + " 0%"
    assert render.progress_bar(50) == "▰" * 6 + "▱" * 6 + " 50%"
    assert render.progress_bar(140) == "▰" * 12 + " 100%"
    assert len({len(render.progress_bar(p).split()[0]) for p in range(0, 101, 7)}) == 1


def test_job_embed_shows_options_credits_and_stays_within_discords_limits() -> None:
    embed = render.job_embed(job(prompt="x" * 5000), balance())
    assert embed.description is not None and len(embed.description) <= 4096
    assert len(embed) <= 6000
    fields = {f.name: f.value for f in embed.fields}
    assert fields == {
        "Duration": "10 s",
        "Ratio": "16:9",
        "Credits held": "2.5",
        "Left this period": "239.9 credits",
    }
    assert "40%" in embed.description


def test_a_size_in_pixels_is_labelled_size_as_in_the_gallery() -> None:
    sized = job()
    sized.request = sized.request.model_copy(update={"aspect_ratio": "1280x720"})
    fields = {f.name: f.value for f in render.job_embed(sized, balance()).fields}
    assert fields["Size"] == "1280×720" and "Ratio" not in fields


def test_a_finished_job_says_what_happened_to_its_credits() -> None:
    failed = render.job_embed(job(JobStatus.FAILED), balance(), note="content policy")
    assert {f.name: f.value for f in failed.fields}["Credits"] == "2.5 returned"
    done = job(JobStatus.DELIVERED).model_copy(update={"charged_uc": 20_000})
    assert {f.name: f.value for f in render.job_embed(done).fields}["Charged"] == "2 credits"


def test_links_prefer_the_hosted_copy_and_state_evolinks_expiry_otherwise() -> None:
    video = DeliveredVideo(
        job_id="j1",
        path="/x.mp4",
        size=10,
        filename="x.mp4",
        hosted_url="https://bot.example/media/t",
        source_url="https://evolink.example/v.mp4",
        source_expires_at=NOW + dt.timedelta(hours=24),
    )
    hosted = render.delivered_text(job(), video, mention="<@2>", as_file=False)
    assert "https://bot.example/media/t" in hosted and "evolink" not in hosted
    bare = render.delivered_text(
        job(), video.model_copy(update={"hosted_url": None}), mention="<@2>", as_file=False
    )
    assert "https://evolink.example/v.mp4" in bare
    assert f"<t:{int((NOW + dt.timedelta(hours=24)).timestamp())}:f>" in bare


def test_input_errors_name_the_discord_option() -> None:
    err = InputError("Images must be JPG, PNG or WebP.", field="image_url")
    assert render.input_error_text(err).startswith("**image**:")


def test_surface_round_trips_and_the_token_is_retired_before_it_expires() -> None:
    surface = DiscordSurface(
        channel_id=10,
        user_id=2,
        app_id=3,
        token="t",
        token_expires_at=NOW + dt.timedelta(minutes=15),
        message_id=4,
        filesize_limit=25 * 1024 * 1024,
        guild_id=1,
    )
    loaded = DiscordSurface.load(surface.dump())
    assert loaded == surface
    assert loaded.webhook_usable(NOW + dt.timedelta(minutes=13))
    assert not loaded.webhook_usable(NOW + dt.timedelta(minutes=14, seconds=30))
    loaded.token_dead = True
    assert not loaded.webhook_usable(NOW)
