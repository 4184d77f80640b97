"""Socket Mode, the DM fallback, Remix, and the manifest agreeing with the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.slack import check_slack, handlers, modal, render
from adapters.slack.oauth import REDIRECT_PATH
from adapters.slack.runtime import EVENTS_PATH
from bot.domain.models import JobStatus
from bot.infra.config import SLACK_DEFAULT_SCOPES, Settings
from bot.infra.simulator import Simulator, clip_for
from tests.adapters.slack.conftest import ALICE, GENERAL, SlackWorld, slack_bot_on, user_payload
from tests.adapters.slack.fake_slack import APP_TOKEN, BOT_TOKEN, TEAM_ID, FakeSlack
from tests.adapters.slack.test_slack_budget_home import button

ROOT = Path(__file__).resolve().parents[3]


async def test_socket_mode_serves_commands_without_an_http_route(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, slack_app_token=APP_TOKEN) as world:
        assert world.runtime.socket_mode
        status, _ = await world.command("a paper boat")
        assert status == 404  # no /slack/events in Socket Mode
        await fake.wait_for(lambda: fake.socket_connected)
        envelope = await fake.push(
            "slash_commands",
            {
                "token": "legacy",
                "team_id": TEAM_ID,
                "channel_id": GENERAL,
                "user_id": ALICE,
                "user_name": "alice",
                "command": "/sora",
                "text": "a paper boat --ar portrait",
                "api_app_id": "A0APP",
                "response_url": fake.response_url("sock"),
                "trigger_id": "trig-sock",
            },
        )
        ack = await fake.wait_for(lambda: fake.socket_acks.get(envelope))
        assert "On it" in ack["text"]
        shared = await fake.wait_for(lambda: fake.shared_files)
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        assert shared[0].data == clip_for(job.request.aspect_ratio, job.request.duration)
        assert shared[0].channel_id == GENERAL and shared[0].thread_ts == job.surface.thread
        assert fake.ok_calls_to("apps.connections.open")


async def test_channel_without_the_bot_moves_the_job_to_a_dm(world: SlackWorld) -> None:
    world.fake.not_in_channels.add(GENERAL)
    await world.command("a quiet harbour")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    assert job.surface.channel == f"D{ALICE}"
    assert job.surface.data["moved_from"] == GENERAL
    notes = [c.args["text"] for c in world.fake.ok_calls_to("chat.postMessage")]
    assert any(f"<#{GENERAL}>" in text and "/invite" in text for text in notes)
    assert world.fake.shared_files[0].channel_id == f"D{ALICE}"


async def test_remix_of_a_video_no_model_remixes_is_refused_plainly(
    world: SlackWorld, sim: Simulator
) -> None:
    """EvoLink's current models have no remix: the delivered message has no Remix button, and
    a remix asked for from an old message's button is answered in words, nothing started."""
    await world.command("a paper boat")
    first = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    assert world.rc.core.catalog.remix_model_for(first.request.model) is None
    final = world.fake.ok_calls_to("chat.update")[-1].args
    ids = [e["action_id"] for b in final["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert render.ACTION_REMIX not in ids
    await world.interact(button(world, render.ACTION_REMIX, first.id, ALICE))
    opened = await world.fake.wait_for(lambda: world.fake.ok_calls_to("views.open"))
    view: dict[str, Any] = opened[0].args["view"]
    assert view["callback_id"] == modal.REMIX_MODAL
    status, _ = await world.interact(
        {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": user_payload(ALICE),
            "api_app_id": "A0APP",
            "token": "legacy",
            "trigger_id": "trig-remix",
            "view": {
                **view,
                "id": "V2",
                "state": {
                    "values": {
                        "prompt": {"value": {"type": "plain_text_input", "value": "make it night"}}
                    }
                },
            },
        }
    )
    assert status == 200

    def told() -> list[str]:
        calls = world.fake.ok_calls_to("chat.postEphemeral") + world.fake.ok_calls_to(
            "chat.postMessage"
        )
        return [c.args["text"] for c in calls if "cannot be remixed" in c.args.get("text", "")]

    assert await world.fake.wait_for(told)
    await world.runtime.idle()
    assert len(await world.job_rows()) == 1
    assert len([r for r in sim.requests if r.kind == "submit"]) == 1


async def test_check_slack_reports_the_workspace_or_the_problem(fake: FakeSlack) -> None:
    settings = Settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="s",
        slack_api_url=fake.api_url,
    )
    ok, text = await check_slack(settings)
    assert ok and "Test Team" in text and "HTTP mode" in text
    bad = settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-wrong")})
    ok, text = await check_slack(bad)
    assert not ok and "invalid_auth" in text and "xoxb-wrong" not in text


def test_manifest_matches_the_code() -> None:
    yaml = pytest.importorskip("yaml")
    manifest = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())
    features, settings = manifest["features"], manifest["settings"]
    assert [c["command"] for c in features["slash_commands"]] == ["/sora"]
    assert {(s["type"], s["callback_id"]) for s in features["shortcuts"]} == {
        ("global", handlers.SHORTCUT_GLOBAL),
        ("message", handlers.SHORTCUT_MESSAGE),
    }
    urls = [
        features["slash_commands"][0]["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    # app_uninstalled / tokens_revoked: installation mode deletes the workspace's tokens.
    assert settings["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "app_uninstalled",
        "tokens_revoked",
    ]
    assert manifest["oauth_config"]["redirect_urls"] == [
        f"https://YOUR-HOST{REDIRECT_PATH}"
    ]  # bolt's redirect route (installation mode)
    assert features["app_home"]["home_tab_enabled"] is True
    # Every button (job, "Ask an admin", Approve/Deny) comes back through interactivity.
    assert settings["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # users:read: users.info tells whether the actor is a workspace admin (SlackActors);
    # *:history: conversations.replies finds a note told before a crash (SlackPort). An OAuth
    # install asks for exactly these (SLACK_SCOPES' default).
    assert set(SLACK_DEFAULT_SCOPES) == scopes
    assert {"commands", "chat:write", "files:write", "users:read", "channels:history"} <= scopes
    assert set(SLACK_DEFAULT_SCOPES) == scopes  # what an OAuth install asks for by default
