"""What Discord can do to the bot: a dead interaction token, 429s, 5xx — the video still arrives."""

from __future__ import annotations

from bot.domain.models import JobStatus, Requester
from tests.adapters.discord.conftest import World
from tests.adapters.discord.fake_discord import FAKE_TOKEN, RecordedRequest
from tests.adapters.discord.helpers import ALICE, eventually, is_upload, sora_options


async def test_an_expired_interaction_token_falls_back_to_bot_token_channel_messages(
    world: World,
) -> None:
    fake = world.fake
    world.rc.simulator.config.task_seconds = 1.0
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    # Discord now refuses the token (as after 15 minutes): 401, code 50027.
    fake.expire_token(record.token)

    upload = await fake.wait_for(is_upload, within=15)
    assert upload.path == f"/channels/{world.channel_id}/messages"
    assert upload.auth == "Bot " + FAKE_TOKEN
    assert upload.files[0].data == world.rc.simulator.clip_of()
    refused = [r for r in fake.requests if r.status == 401 and record.token in r.path]
    assert refused, "the adapter must have tried the webhook first"

    job = (
        await world.rc.core.service.recent_jobs(
            Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        )
    )[0]
    assert job.surface.data["token_dead"] is True
    # The status went to a bot message in the channel, edited from then on.
    bot_status = job.surface.data["bot_message_id"]
    assert bot_status and "Delivered" in fake.messages[bot_status]["embeds"][0]["description"]


async def test_a_429_and_a_503_from_discord_are_survived(world: World) -> None:
    fake = world.fake
    token_upload = r"/webhooks/\d+/itoken-\d+"
    fake.fail("POST", token_upload, 429, retry_after=0.2)
    fake.fail("POST", token_upload, 503, message="upstream connect error")
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    upload = await fake.wait_for(is_upload, within=20)
    assert upload.files[0].data == world.rc.simulator.clip_of()

    def tries(status: int) -> list[RecordedRequest]:
        return [r for r in fake.requests if r.path.endswith(record.token) and r.status == status]

    assert len(tries(429)) == 1 and len(tries(503)) == 1 and len(tries(200)) == 1
    job = (
        await world.rc.core.service.recent_jobs(
            Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])
        )
    )[0]
    assert job.status in (JobStatus.DELIVERING, JobStatus.DELIVERED)


async def test_past_the_tokens_15_minutes_the_bot_token_is_used_without_trying_the_webhook(
    world: World,
) -> None:
    fake = world.fake
    world.rc.simulator.config.task_seconds = 1.5
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    service = world.rc.core.service
    alice = Requester(platform="discord", workspace=world.guild_id, user=ALICE["id"])

    async def accepted() -> bool:
        return bool(await service.recent_jobs(alice))

    await eventually(accepted)
    job = (await service.recent_jobs(alice))[0]
    # The job outlives its interaction: move the token's expiry into the past.
    data = dict(job.surface.data, token_expires_at="2020-01-01T00:00:00+00:00")
    await service.save_surface(job.id, job.surface.model_copy(update={"data": data}))
    seen = len(fake.requests)

    upload = await fake.wait_for(is_upload, within=15)
    assert upload.path == f"/channels/{world.channel_id}/messages"
    later = fake.requests[seen:]
    assert not [r for r in later if record.token in r.path and r.method == "POST"]
    assert not [r for r in later if r.status == 401]


async def test_a_deleted_status_message_does_not_hold_back_the_video(world: World) -> None:
    fake = world.fake
    world.rc.simulator.config.task_seconds = 1.0
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )
    await fake.wait_for(lambda r: r.path.endswith(f"{record.token}/callback"))
    fake.messages.pop(record.original_message_id or "")  # someone deleted it

    upload = await fake.wait_for(is_upload, within=15)
    assert upload.files[0].data == world.rc.simulator.clip_of()
    assert not [r for r in fake.requests if "went wrong" in str(r.json)]


async def test_an_upload_discord_refuses_as_too_large_is_sent_as_the_link(world: World) -> None:
    fake = world.fake
    fake.fail(
        "POST", r"/webhooks/\d+/itoken-\d+", 413, code=40005, message="Request entity too large"
    )
    record = await fake.slash(
        "sora",
        sora_options("a paper boat"),
        user=ALICE,
        guild_id=world.guild_id,
        channel_id=world.channel_id,
    )

    def link_post(req: RecordedRequest) -> bool:
        return req.status == 200 and req.path.endswith(record.token) and "/media/" in str(req.json)

    await fake.wait_for(link_post, within=15)
    assert [r.status for r in fake.requests if r.files] == [413]
