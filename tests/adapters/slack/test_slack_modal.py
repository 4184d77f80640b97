"""Shortcuts and the modal: what `views.open` received, field errors, submissions, Slack images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.slack import admin_render
from bot.domain.models import JobStatus, fmt_credits
from bot.infra.simulator import Simulator
from tests.adapters.slack.actions import buttons, click, posts_to, response, text_of
from tests.adapters.slack.conftest import (
    ADMIN,
    ALICE,
    GENERAL,
    SlackWorld,
    response_json,
    slack_bot_on,
    user_payload,
)
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack
from tests.prices import CATALOG, DEFAULT_MODEL, LONGEST, SPEC, UNIT

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


# A duration the modal offers (another model makes it) that the default model does not.
OFF = str(min({d for m in CATALOG.models for d in m.durations} - set(SPEC.durations)))


def blocks_by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


def submission(
    view: dict[str, Any], values: dict[str, dict[str, Any]], user: str = ALICE
) -> dict[str, Any]:
    """A view_submission payload for the modal `view` as the bot opened it."""
    state = {block: {"value": value} for block, value in values.items()}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "test"},
        "user": user_payload(user),
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": "trig-submit",
        "view": {**view, "id": "V1", "team_id": TEAM_ID, "state": {"values": state}},
    }


def text_value(text: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": text}


def selected(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def conversation(channel: str | None) -> dict[str, Any]:
    return {"type": "conversations_select", "selected_conversation": channel}


async def open_global_modal(world: SlackWorld) -> dict[str, Any]:
    status, _ = await world.interact(
        {
            "type": "shortcut",
            "callback_id": "sora_make_video",
            "trigger_id": "trig-global",
            "user": user_payload(),
            "team": {"id": TEAM_ID, "domain": "test"},
            "token": "legacy",
            "action_ts": "1700000000.1",
        }
    )
    assert status == 200
    call = await world.fake.wait_for(lambda: world.fake.ok_calls_to("views.open"))
    assert call[-1].args["trigger_id"] == "trig-global"
    view: dict[str, Any] = call[-1].args["view"]
    return view


async def test_global_shortcut_asks_where_to_post(world: SlackWorld) -> None:
    view = await open_global_modal(world)
    blocks = blocks_by_id(view)
    assert view["callback_id"] == "sora_video_modal"
    channel = blocks["channel"]["element"]
    assert channel["type"] == "conversations_select"
    assert channel["default_to_current_conversation"] is True
    assert "initial_conversation" not in channel
    models = [o["value"] for o in blocks["model"]["element"]["options"]]
    assert models == world.rc.core.catalog.names(selectable_only=True)
    assert blocks["model"]["element"]["initial_option"]["value"] == DEFAULT_MODEL
    durations = [o["value"] for o in blocks["duration"]["element"]["options"]]
    assert "10" in durations and "4" in durations
    assert blocks["image"]["element"]["type"] == "file_input"
    assert "prompt" in blocks and "quality" in blocks and "audio" in blocks
    assert "watermark" not in blocks  # no current model has the option
    qualities = [o["value"] for o in blocks["quality"]["element"]["options"]]
    assert "1080p" in qualities and "4k" in qualities


async def test_message_shortcut_prefills_prompt_channel_and_image(world: SlackWorld) -> None:
    image = world.fake.add_file("boat.png", PNG, "image/png")
    status, _ = await world.interact(
        {
            "type": "message_action",
            "callback_id": "sora_from_message",
            "trigger_id": "trig-msg",
            "user": user_payload(),
            "team": {"id": TEAM_ID},
            "channel": {"id": GENERAL, "name": "general"},
            "token": "legacy",
            "message_ts": "1700000000.000100",
            "response_url": world.fake.response_url("msg"),
            "message": {
                "type": "message",
                "user": "U0BOB",
                "ts": "1700000000.000100",
                "text": "a paper boat at dawn",
                "files": [image],
            },
        }
    )
    assert status == 200
    call = await world.fake.wait_for(lambda: world.fake.ok_calls_to("views.open"))
    view = call[-1].args["view"]
    blocks = blocks_by_id(view)
    assert call[-1].args["trigger_id"] == "trig-msg"
    assert blocks["prompt"]["element"]["initial_value"] == "a paper boat at dawn"
    assert blocks["channel"]["element"]["initial_conversation"] == GENERAL
    assert json.loads(view["private_metadata"])["image_file"] == image["id"]
    assert "boat.png" in blocks["image"]["hint"]["text"]

    # Submitting it as is: the message's image is fetched with the bot token and re-hosted.
    status, text = await world.interact(
        submission(
            view,
            {
                "prompt": text_value("a paper boat at dawn"),
                "model": selected(DEFAULT_MODEL),
                "channel": conversation(GENERAL),
            },
        )
    )
    assert status == 200 and response_json(text).get("response_action") is None
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    image_url = job.request.image_url or ""
    assert image_url.startswith(f"{world.rc.base_url}/media/")
    assert world.fake.files[image["id"]].downloads == 1
    async with world.http.get(image_url) as resp:  # what EvoLink would read
        assert await resp.read() == PNG
    submit = next(r for r in world.rc.simulator.requests if r.kind == "submit")
    assert submit.json["image_urls"] == [image_url]


async def test_bad_values_come_back_as_field_errors(world: SlackWorld, sim: Simulator) -> None:
    view = await open_global_modal(world)
    cases = [
        (
            {
                "prompt": text_value("a boat"),
                "model": selected(DEFAULT_MODEL),
                "duration": selected(OFF),
            },
            "duration",
        ),
        ({"prompt": text_value("   "), "model": selected(DEFAULT_MODEL)}, "prompt"),
        (
            {
                "prompt": text_value("a boat"),
                "model": selected(next(m.name for m in CATALOG.models if not m.qualities)),
                "quality": selected("1080p"),
            },
            "quality",
        ),
    ]
    for values, block in cases:
        status, text = await world.interact(submission(view, values))
        assert status == 200
        answer = response_json(text)
        assert answer["response_action"] == "errors", values
        assert list(answer["errors"]) == [block]
        assert answer["errors"][block]
    assert await world.job_rows() == []
    assert [r for r in sim.requests if r.kind != "pricing"] == []


async def test_modal_without_channel_posts_in_a_dm(world: SlackWorld) -> None:
    view = await open_global_modal(world)
    status, text = await world.interact(
        submission(
            view,
            {
                "prompt": text_value("a fox in the snow"),
                "model": selected(DEFAULT_MODEL),
                "duration": selected(str(LONGEST)),
                "aspect_ratio": selected("16:9"),
            },
        )
    )
    assert status == 200 and text == ""
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    assert (job.request.duration, job.request.aspect_ratio) == (
        LONGEST,
        SPEC.normalize_ratio("16:9"),
    )
    assert world.fake.ok_calls_to("conversations.open")[0].args["users"] == ALICE
    assert job.surface.channel == f"D{ALICE}"
    assert world.fake.shared_files[0].channel_id == f"D{ALICE}"


async def test_slack_image_without_public_base_url_is_a_field_error(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, public=False) as world:
        assert world.rc.core.settings.public_base_url is None
        view = await open_global_modal(world)
        image = fake.add_file("cat.png", PNG, "image/png")
        status, text = await world.interact(
            submission(
                view,
                {
                    "prompt": text_value("a cat"),
                    "model": selected(DEFAULT_MODEL),
                    "image": {"type": "file_input", "files": [image]},
                },
            )
        )
        answer = response_json(text)
        assert status == 200 and answer["response_action"] == "errors"
        assert "PUBLIC_BASE_URL" in answer["errors"]["image"]
        assert fake.files[image["id"]].downloads == 0
        assert await world.job_rows() == []


async def test_uploaded_image_of_the_wrong_type_is_a_field_error(world: SlackWorld) -> None:
    view = await open_global_modal(world)
    gif = world.fake.add_file("cat.gif", b"GIF89a", "image/gif")
    status, text = await world.interact(
        submission(
            view,
            {
                "prompt": text_value("a cat"),
                "model": selected(DEFAULT_MODEL),
                "image": {"type": "file_input", "files": [gif]},
                "channel": conversation(GENERAL),
            },
        )
    )
    answer = response_json(text)
    assert status == 200
    assert answer["errors"] == {"image": "The image must be a jpg, png or webp file."}
    assert world.fake.files[gif["id"]].downloads == 0


async def test_over_budget_from_the_modal_is_told_privately(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, user_credits_per_period="1") as world:
        view = await open_global_modal(world)
        status, text = await world.interact(
            submission(
                view,
                {
                    "prompt": text_value("a fox"),
                    "model": selected(DEFAULT_MODEL),
                    "channel": conversation(GENERAL),
                },
            )
        )
        assert status == 200 and text == ""  # valid input: the modal closes
        notes = await fake.wait_for(lambda: fake.ok_calls_to("chat.postEphemeral"))
        assert notes[0].args["user"] == ALICE and notes[0].args["channel"] == GENERAL
        assert f"costs {fmt_credits(UNIT)} credits" in notes[0].args["text"]
        assert (
            await world.job_rows() == [] and [r for r in sim.requests if r.kind != "pricing"] == []
        )
        assert fake.calls_to("chat.postMessage") == []

        # The note offers "Ask an admin"; the request goes to the admin (a DM: no channel set).
        (ask,) = buttons(notes[0].args["blocks"])
        assert ask["action_id"] == admin_render.ACTION_ASK
        await world.interact(click(world, ask["action_id"], ask["value"], ALICE, rid="ask"))
        assert "asked the admins" in (await response(world, "ask"))["text"]
        (approval,) = await world.rc.core.service.pending_approvals("cli", "slack")
        assert approval.surface.channel == GENERAL and approval.request.prompt == "a fox"
        dm = await fake.wait_for(lambda: posts_to(world, f"D{ADMIN}"))
        assert approval.id in text_of(dm[0])


async def test_a_modal_request_is_validated_once_before_the_ack_with_its_real_image_link(
    world: SlackWorld, sim: Simulator
) -> None:
    view = await open_global_modal(world)
    core = world.rc.core
    image = world.fake.add_file("boat.png", PNG, "image/png")
    bad = {
        "prompt": text_value("a paper boat"),
        "model": selected(DEFAULT_MODEL),
        "duration": selected(OFF),  # a length another model makes, not the default one
        "image": {"type": "file_input", "files": [image]},
        "channel": conversation(GENERAL),
    }
    status, text = await world.interact(submission(view, bad))
    answer = response_json(text)
    assert status == 200 and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["duration"]
    # Refused before anything was read from Slack, held or sent.
    assert world.fake.calls_to("files.info") == [] and world.fake.files[image["id"]].downloads == 0
    assert await world.job_rows() == [] and [r for r in sim.requests if r.kind != "pricing"] == []
    assert await core.store.fetchall("SELECT id FROM ledger") == []

    status, text = await world.interact(
        submission(view, {**bad, "duration": selected(str(LONGEST))})
    )
    assert status == 200 and text == ""
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    image_url = job.request.image_url or ""
    assert core.media.signed(image_url) and "/media/check" not in image_url
    assert world.fake.files[image["id"]].downloads == 1
    submit = next(r for r in sim.requests if r.kind == "submit")
    assert submit.json["image_urls"] == [image_url]


SEVERAL = next(s for s in CATALOG.models if s.max_images > 1 and s.selectable)


async def test_several_uploaded_images_reach_a_model_that_takes_several(
    world: SlackWorld, sim: Simulator
) -> None:
    view = await open_global_modal(world)
    assert blocks_by_id(view)["image"]["element"]["max_files"] == min(10, SEVERAL.max_images)
    files = [world.fake.add_file(f"ref-{i}.png", PNG, "image/png") for i in range(3)]
    values = {
        "prompt": text_value("a dancer in three poses"),
        "model": selected(SEVERAL.name),
        "image": {"type": "file_input", "files": files},
        "channel": conversation(GENERAL),
    }
    too_many = [world.fake.add_file(f"x-{i}.png", PNG, "image/png") for i in range(3)]
    one_image = next(s for s in CATALOG.models if s.max_images == 1 and s.selectable)
    status, text = await world.interact(
        submission(view, {**values, "model": selected(one_image.name), "image": {
            "type": "file_input", "files": too_many[:2]}})
    )  # fmt: skip
    answer = response_json(text)
    assert status == 200 and list(answer["errors"]) == ["image"]
    assert "takes one image, got 2" in answer["errors"]["image"]
    assert all(world.fake.files[f["id"]].downloads == 0 for f in too_many)

    status, text = await world.interact(submission(view, values))
    assert status == 200 and text == ""
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    assert len(job.request.image_urls) == 3
    assert all(world.rc.core.media.signed(url) for url in job.request.image_urls)
    assert all(world.fake.files[f["id"]].downloads == 1 for f in files)
    submit = next(r for r in sim.requests if r.kind == "submit")
    assert submit.json["image_urls"] == job.request.image_urls
