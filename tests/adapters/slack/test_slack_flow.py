"""`/sora` through bolt's real request path: signed HTTP → ack → job → progress → uploaded MP4."""

from __future__ import annotations

from decimal import Decimal

from bot.domain.models import JobStatus
from bot.infra.simulator import Simulator, clip_for
from tests.adapters.slack.conftest import ALICE, GENERAL, SlackWorld


async def test_slash_command_uploads_the_simulators_bytes_into_the_thread(
    world: SlackWorld, sim: Simulator
) -> None:
    status, text = await world.command("a paper boat on a rainy street --ar landscape")
    assert status == 200
    assert "On it" in text  # the ack carries the acknowledgement

    fake = world.fake
    shared = await fake.wait_for(lambda: fake.shared_files)
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)

    # Exactly the bytes the simulator produced for that orientation, in the channel + thread.
    assert len(shared) == 1
    assert shared[0].data == clip_for(job.request.aspect_ratio, job.request.duration)
    assert shared[0].channel_id == GENERAL
    progress = fake.ok_calls_to("chat.postMessage")[0]
    assert progress.args["channel"] == GENERAL
    assert job.surface.channel == GENERAL
    assert shared[0].thread_ts == job.surface.thread
    comment = shared[0].initial_comment or ""
    assert "a paper boat on a rainy street" in comment
    assert job.request.model in comment
    assert "credits charged" in comment and "left" in comment

    # One task at EvoLink; the progress message ended in its delivered state with buttons.
    assert len([r for r in sim.requests if r.kind == "submit"]) == 1
    final = fake.ok_calls_to("chat.update")[-1].args
    assert final["ts"] == job.surface.thread
    actions = [b for b in final["blocks"] if b["type"] == "actions"]
    # No current EvoLink model remixes a video: Again only.
    assert [e["action_id"] for e in actions[0]["elements"]] == ["sora_again"]
    balance = await world.rc.core.service.balance(job.requester)
    assert balance.held == Decimal(0) and balance.used == job.charged
    assert job.requester.user == ALICE


async def test_upload_refused_posts_the_hosted_link(world: SlackWorld) -> None:
    world.fake.refuse_uploads = "file_too_large"
    await world.command("a lighthouse in a storm")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    replies = await world.fake.wait_for(
        lambda: [
            c
            for c in world.fake.ok_calls_to("chat.postMessage")
            if c.args.get("thread_ts") == job.surface.thread
        ]
    )
    assert world.fake.shared_files == []
    text = replies[-1].args["text"]
    assert f"{world.rc.base_url}/media/" in text
    # The link serves the video.
    link = text.rsplit(" ", 1)[-1]
    async with world.http.get(link) as resp:
        assert resp.status == 200
        assert await resp.read() == clip_for(job.request.aspect_ratio, job.request.duration)


async def test_rate_limited_chat_update_is_retried(world: SlackWorld) -> None:
    world.fake.rate_limit("chat.update", times=1, retry_after=0)
    await world.command("a cat playing piano")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    updates = world.fake.calls_to("chat.update")
    assert updates[0].status == 429
    # The same update was sent again and succeeded.
    assert updates[1].status == 200 and updates[1].args == updates[0].args
    assert job.surface.thread == updates[1].args["ts"]


async def test_slack_escapes_are_undone_in_the_prompt(world: SlackWorld, sim: Simulator) -> None:
    # With should_escape on, Slack sends links and mentions in angle brackets and & as &amp;.
    await world.command("fish &amp; chips for <@U0BOB|bob> --image <https://img.test/a.png>")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    assert job.request.prompt == "fish & chips for @bob"
    assert job.request.image_url == "https://img.test/a.png"
    submit = next(r for r in sim.requests if r.kind == "submit")
    assert submit.json["prompt"] == "fish & chips for @bob"
