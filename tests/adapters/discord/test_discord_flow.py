"""The real discord.py client, the real core and the EvoLink simulator, against a fake Discord."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import aiohttp

from bot.domain.catalog import join_choices
from bot.domain.models import JobStatus, Requester, fmt_credits
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import World, bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, RecordedRequest
from tests.adapters.discord.helpers import ALICE, is_upload, posted_text, sora_options
from tests.prices import DEFAULT_MODEL, LONGEST, SPEC, UNIT


def alice_in(world: World) -> Requester:
    return Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])


async def test_commands_are_synced_to_the_configured_guild_with_their_options(
    world: World,
) -> None:
    commands = {c["name"]: c for c in world.fake.guild_commands[world.guild_id]}
    assert set(commands) == {"sora", "sora-credits", "sora-jobs", "sora-gallery", "sora-admin"}
    assert world.fake.global_commands == []
    options = {o["name"]: o for o in commands["sora"]["options"]}
    assert list(options) == [
        "prompt",
        "duration",
        "aspect_ratio",
        "model",
        "image",
        "watermark",
        "quality",
        "audio",
    ]
    assert options["quality"]["autocomplete"] is True and options["audio"]["type"] == 5
    assert options["prompt"]["required"] is True
    assert options["duration"]["type"] == 4 and options["duration"]["autocomplete"] is True
    assert options["model"]["autocomplete"] is True
    assert options["aspect_ratio"]["autocomplete"] is True
    assert options["image"]["type"] == 11 and options["watermark"]["type"] == 5
    admin = {o["name"] for o in commands["sora-admin"]["options"]}
    assert admin == {
        "set-limit",
        "grant",
        "team-budget",
        "role-limit",
        "usage",
        "export",
        "settings",
    }


async def test_happy_path_defers_then_delivers_the_simulators_clip_as_an_attachment(
    world: World,
) -> None:
    fake = world.fake
    record = await fake.slash(
        "sora",
        sora_options("a paper boat on a rainy street --ar landscape", duration=LONGEST),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    upload = await fake.wait_for(is_upload, within=15)
    assert record.callback == {"type": 5}  # deferred with "thinking"
    assert upload.files[0].data == world.rc.simulator.clip_of()
    assert upload.files[0].filename is not None and upload.files[0].filename.endswith(".mp4")
    assert f"/webhooks/{fake.application_id}/{record.token}" == upload.path
    assert f"<@{ALICE['id']}>" in posted_text(upload)

    jobs = await world.rc.core.service.recent_jobs(alice_in(world))
    assert len(jobs) == 1
    job = jobs[0]
    assert (job.request.aspect_ratio, job.request.duration) == (
        SPEC.normalize_ratio("landscape"),
        LONGEST,
    )
    submits = [r for r in world.rc.simulator.requests if r.kind == "submit"]
    assert len(submits) == 1 and submits[0].json["prompt"] == "a paper boat on a rainy street"

    # The status message ends as "Delivered" with Again (no Cancel) and the credits left.
    status = fake.messages[record.original_message_id or ""]
    embed = status["embeds"][0]
    assert "Delivered" in embed["description"]
    buttons = [c["custom_id"] for row in status["components"] for c in row["components"]]
    # No current EvoLink model remixes a video: Again only.
    assert buttons == [f"sora:again:{job.id}"]
    # The charge is what EvoLink reported it used (the simulator reports usage.credits_used).
    done = await world.rc.core.service.get_job(job.id)
    assert done.status == JobStatus.DELIVERED and done.charged is not None
    balance = await world.rc.core.service.balance(alice_in(world))
    assert balance.held == 0 and balance.used == done.charged
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Charged"] == f"{fmt_credits(done.charged)} credits"
    assert fields["Left this period"] == f"{fmt_credits(Decimal(300) - done.charged)} credits"


async def test_a_video_over_the_upload_limit_arrives_as_the_hosted_link(world: World) -> None:
    fake = world.fake
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        size_limit=1000,  # Interaction.filesize_limit: 1000 bytes
    )

    def link_post(req: RecordedRequest) -> bool:
        return (
            req.method == "POST"
            and req.path.endswith(record.token)
            and "/media/" in posted_text(req)
        )

    post = await fake.wait_for(link_post, within=15)
    assert not [r for r in fake.requests if r.files], "nothing may be uploaded"
    link = posted_text(post).split()[-1]
    assert link.startswith(world.rc.base_url + "/media/")
    button = post.json["components"][0]["components"][0]
    assert (button["style"], button["url"]) == (5, link)  # a link button to the same place
    async with aiohttp.ClientSession() as http, http.get(link) as resp:
        assert resp.status == 200
        assert await resp.read() == world.rc.simulator.clip_of()


async def test_over_budget_is_refused_privately_and_nothing_reaches_evolink(
    fake: FakeDiscord, tmp_path: Path, sim: Simulator
) -> None:
    async with bot_on(fake, tmp_path, sim, user_credits_per_period="2") as world:
        record = await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=ALICE,
            guild_id=world.guild_id,
            channel_id=world.channel_id,
        )
        note = await fake.wait_for(
            lambda r: r.method == "POST" and r.path.endswith(record.token), within=10
        )
        assert record.callback == {"type": 5}
        assert note.json["flags"] & 64  # ephemeral
        assert fmt_credits(UNIT) in posted_text(note)  # the price of a default request
        assert fake.find("DELETE", rf"/webhooks/\d+/{record.token}/messages/@original")
        assert not [r for r in sim.requests if r.kind == "submit"]
        balance = await world.rc.core.service.balance(alice_in(world))
        assert balance.held == 0 and balance.used == 0
        assert await world.rc.core.service.recent_jobs(alice_in(world)) == []


async def test_a_bad_option_is_refused_ephemerally_naming_the_option(world: World) -> None:
    fake = world.fake
    record = await fake.slash(
        "sora",
        sora_options("a paper boat", duration=7),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None and record.callback["type"] == 4
    assert record.callback["data"]["flags"] & 64
    assert "duration" in record.callback["data"]["content"].lower()
    assert join_choices(SPEC.durations) in record.callback["data"]["content"]

    picture = fake.attachment("clip.gif", 2000, "image/gif")
    record = await fake.slash(
        "sora",
        sora_options("a paper boat", image=picture["id"]),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        attachments=[picture],
    )
    await fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None and record.callback["data"]["flags"] & 64
    assert "**image**" in record.callback["data"]["content"]
    assert not [r for r in world.rc.simulator.requests if r.kind == "submit"]


async def test_an_image_option_is_passed_to_evolink_as_its_url(world: World) -> None:
    fake = world.fake
    picture = fake.attachment("first.png", 50_000, "image/png")
    await fake.slash(
        "sora",
        sora_options("a paper boat", image=picture["id"]),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
        attachments=[picture],
    )
    await fake.wait_for(is_upload, within=15)
    submit = next(r for r in world.rc.simulator.requests if r.kind == "submit")
    assert submit.json["image_urls"] == [picture["url"]]


async def test_an_internal_image_link_with_slash_options_is_refused_before_anything_is_held(
    world: World,
) -> None:
    fake = world.fake
    record = await fake.slash(
        "sora",
        sora_options(
            "a paper boat --image http://169.254.169.254/latest/meta-data",
            duration=LONGEST,
            model=DEFAULT_MODEL,
            aspect_ratio="16:9",
        ),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    assert record.callback is not None and record.callback["type"] == 4
    assert record.callback["data"]["flags"] & 64  # only the user sees it
    assert "public link" in record.callback["data"]["content"]
    assert [r for r in world.rc.simulator.requests if r.kind != "pricing"] == []
    assert await world.rc.core.store.fetchall("SELECT id FROM ledger") == []
    assert await world.rc.core.service.recent_jobs(alice_in(world)) == []


async def test_a_failed_task_names_the_reason_and_returns_the_credits(world: World) -> None:
    fake = world.fake
    world.rc.simulator.config.fail_next = ["content_policy_violation"]
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )

    def failure_note(req: RecordedRequest) -> bool:
        return (
            req.method == "POST"
            and req.path.endswith(record.token)
            and "returned" in posted_text(req)
        )

    note = posted_text(await fake.wait_for(failure_note, within=15))
    job = (await world.rc.core.service.recent_jobs(alice_in(world)))[0]
    assert job.status == JobStatus.FAILED and job.error
    assert job.error in note and fmt_credits(job.reserved) in note
    balance = await world.rc.core.service.balance(alice_in(world))
    assert balance.held == 0 and balance.used == 0
    status = fake.messages[record.original_message_id or ""]["embeds"][0]
    assert "Failed" in status["description"]
