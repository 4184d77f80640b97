"""`/sora admin settings`: the modal Slack received, saving it, a bad value, a refusal.

Through the real bolt app over signed HTTP: what the fake Slack received (views.open, the
ephemeral confirmation, the response_url answer), and what the core then does (the settings,
the audit rows, the ledger and admission of the next `/sora`); saving runs on both engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.settings_modal import SETTINGS_MODAL, SettingsModal
from bot.domain.models import Requester
from bot.domain.workspace_settings import SETTING_KEYS
from bot.infra.simulator import Simulator
from tests.adapters.slack.actions import response
from tests.adapters.slack.conftest import (
    ADMIN,
    ALICE,
    GENERAL,
    SlackWorld,
    response_json,
    slack_bot_on,
    user_payload,
)
from tests.adapters.slack.fake_oauth import FakeSlackOAuth
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack
from tests.adapters.slack.oauth_world import command as oauth_command
from tests.adapters.slack.oauth_world import install, oauth_bot_on
from tests.prices import CATALOG, DEFAULT_MODEL, UNIT

OPS = "cli:ops"
OWNER = "U0OWNER"  # a workspace owner by Slack's users.info, not in ADMIN_USER_IDS


def typed(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def blocks_by_id(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


async def open_settings(world: SlackWorld, user: str = ADMIN) -> dict[str, Any]:
    """`/sora admin settings` by `user`; the view Slack was asked to open."""
    status, body = await world.command("admin settings", user=user, trigger_id="trig-settings")
    assert status == 200 and not body
    [call] = await world.fake.wait_for(lambda: world.fake.ok_calls_to("views.open"))
    assert call.args["trigger_id"] == "trig-settings"
    view: dict[str, Any] = call.args["view"]
    return view


def submission(
    view: dict[str, Any], typed_in: dict[str, str], user: str = ADMIN, team: str = TEAM_ID
) -> dict[str, Any]:
    """The view_submission Slack sends: every field's text (as shown unless `typed_in`)."""
    state: dict[str, Any] = {}
    for block_id, block in blocks_by_id(view).items():
        text = typed_in.get(block_id, block["element"].get("initial_value"))
        state[block_id] = {"value": {"type": "plain_text_input", "value": text}}
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "test"},
        "user": {**user_payload(user), "team_id": team},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": "trig-save",
        "view": {**view, "id": "V1", "team_id": team, "state": {"values": state}},
    }


async def settings_now(world: SlackWorld) -> Any:
    return await world.rc.core.service.workspace_settings(OPS, "slack", TEAM_ID)


async def setting_audits(world: SlackWorld) -> list[dict[str, object]]:
    return [a for a in await world.rc.core.service.audit_log() if a["action"] == "set-setting"]


async def test_the_modal_shows_every_setting_with_its_value_and_where_it_comes_from(
    world: SlackWorld,
) -> None:
    await world.rc.core.service.change_workspace_setting(
        OPS, "slack", TEAM_ID, "budget_period", "week"
    )
    world.fake.workspace_owners.add(OWNER)  # Slack says so: no ADMIN_USER_IDS needed
    view = await open_settings(world, user=OWNER)

    assert view["callback_id"] == SETTINGS_MODAL
    blocks = blocks_by_id(view)
    assert list(blocks) == [spec.key for spec in SETTING_KEYS]
    current = await settings_now(world)
    for spec in SETTING_KEYS:
        block = blocks[spec.key]
        assert block["label"]["text"].startswith(spec.label)
        from_env = spec.key != "budget_period"
        assert block["label"]["text"].endswith("(default)") is from_env
        assert block["optional"] is True and block["hint"]["text"] == spec.help
    assert blocks["budget_period"]["element"]["initial_value"] == "week"
    assert blocks["default_model"]["element"]["initial_value"] == DEFAULT_MODEL
    assert blocks["user_credits_per_period"]["element"]["initial_value"] == typed(
        current.user_credits_per_period
    )
    assert blocks["max_jobs_per_user"]["element"]["initial_value"] == str(current.max_jobs_per_user)
    assert "initial_value" not in blocks["admin_channel"]["element"]  # none in the environment


async def test_saving_changes_what_was_changed_and_the_next_request_obeys_it(
    fake: FakeSlack, tmp_path: Path, sim: Simulator, database_url: str
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, database_url=database_url) as world:
        await saving_changes_what_was_changed(world)


async def saving_changes_what_was_changed(world: SlackWorld) -> None:
    service = world.rc.core.service
    view = await open_settings(world)
    status, body = await world.interact(
        submission(view, {"user_credits_per_period": "0", "budget_timezone": "Europe/Paris"})
    )
    assert status == 200 and response_json(body) == {}

    after = await settings_now(world)
    assert after.overridden == {"user_credits_per_period", "budget_timezone"}
    assert after.user_credits_per_period == 0 and after.budget_timezone == "Europe/Paris"
    audits = await setting_audits(world)
    assert len(audits) == 2 and {a["actor"] for a in audits} == {f"slack:{ADMIN}"}

    # Confirmed to the admin only, naming what changed.
    [told] = await world.fake.wait_for(lambda: world.fake.ok_calls_to("chat.postEphemeral"))
    assert (told.args["channel"], told.args["user"]) == (GENERAL, ADMIN)
    assert "Allowance per person" in told.args["text"] and "Europe/Paris" in told.args["text"]
    assert "Team budget" not in told.args["text"]

    # Admission follows: an allowance of 0 refuses Alice's next video, nothing sent to EvoLink.
    balance = await service.balance(Requester(platform="slack", workspace=TEAM_ID, user=ALICE))
    assert balance.limit == 0 and balance.available == 0
    await world.command("a paper boat", user=ALICE)
    refusal = await response(world, f"cmd-{ALICE}")
    assert "credits" in refusal["text"] and str(typed(UNIT)) in refusal["text"]
    assert not [r for r in world.rc.simulator.requests if r.kind == "submit"]

    # Emptying a field (or typing `default`) goes back to the environment's value.
    view = await open_settings_again(world)
    assert blocks_by_id(view)["user_credits_per_period"]["element"]["initial_value"] == "0"
    await world.interact(submission(view, {"user_credits_per_period": ""}))
    assert (await settings_now(world)).overridden == {"budget_timezone"}


async def test_a_bad_value_is_shown_on_its_field_and_nothing_changes(world: SlackWorld) -> None:
    before = await settings_now(world)
    view = await open_settings(world)
    status, body = await world.interact(
        submission(view, {"max_jobs_per_user": "5", "budget_period": "fortnight"})
    )
    assert status == 200
    answer = response_json(body)
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["budget_period"]
    assert "week" in answer["errors"]["budget_period"]
    assert await settings_now(world) == before  # max_jobs_per_user, valid, not written either
    assert await setting_audits(world) == []
    assert not world.fake.ok_calls_to("chat.postEphemeral")


async def test_someone_who_is_not_an_admin_gets_the_reason_and_no_modal(
    world: SlackWorld,
) -> None:
    status, _ = await world.command("admin settings", user=ALICE, trigger_id="trig-alice")
    assert status == 200
    refusal = await response(world, f"cmd-{ALICE}")
    assert "Only budget admins" in refusal["text"]
    assert refusal.get("response_type") == "ephemeral"
    assert not world.fake.calls_to("views.open")

    # A forged submission by her (no modal was opened for her) changes nothing either.
    before = await settings_now(world)
    fake_view = {
        "type": "modal",
        "callback_id": SETTINGS_MODAL,
        "private_metadata": "{}",
        "blocks": [
            {"type": "input", "block_id": "max_jobs_per_user", "element": {"initial_value": "2"}}
        ],
    }
    status, body = await world.interact(
        submission(fake_view, {"max_jobs_per_user": "99"}, user=ALICE)
    )
    assert status == 200
    assert "Only budget admins" in response_json(body)["errors"]["max_jobs_per_user"]
    assert await settings_now(world) == before


async def open_settings_again(world: SlackWorld) -> dict[str, Any]:
    """A second `/sora admin settings`: the newest view Slack was asked to open."""
    seen = len(world.fake.ok_calls_to("views.open"))
    status, _ = await world.command("admin settings", user=ADMIN, trigger_id="trig-again")
    assert status == 200
    calls = await world.fake.wait_for(
        lambda: (c := world.fake.ok_calls_to("views.open")) and len(c) > seen and c
    )
    view: dict[str, Any] = calls[-1].args["view"]
    return view


async def test_a_value_the_core_refuses_after_the_form_accepted_it_changes_nothing(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    """A model the catalog has but EvoLink's price list does not offer: the core refuses it."""
    gone = next(m for m in CATALOG.names(selectable_only=True) if m != DEFAULT_MODEL)
    sim.config.retired[gone] = "absent"
    async with slack_bot_on(fake, tmp_path, sim) as world:
        before = await settings_now(world)
        view = await open_settings(world)
        status, body = await world.interact(
            submission(view, {"default_model": gone, "user_credits_per_period": "50"})
        )
        assert status == 200
        errors = response_json(body)["errors"]
        assert list(errors) == ["default_model"] and gone in errors["default_model"]
        assert await settings_now(world) == before
        assert await setting_audits(world) == []

        # Written in the other order, the change already made is put back.
        settings_form = SettingsModal(world.rc.core.service, lambda coro: coro.close())
        admin = Requester(platform="slack", workspace=TEAM_ID, user=ADMIN)
        with pytest.raises(Exception, match=gone) as refused:
            await settings_form._apply(
                admin, {"user_credits_per_period": "50", "default_model": gone}
            )
        assert getattr(refused.value, "key", None) == "default_model"
        assert await settings_now(world) == before
        reasons = sorted(str(a["reason"]) for a in await setting_audits(world))
        assert reasons == ["user_credits_per_period=50", "user_credits_per_period=default"]


async def test_the_workspaces_default_model_is_what_slack_orders_and_preselects(
    world: SlackWorld,
) -> None:
    service = world.rc.core.service
    model = next(
        m
        for m in service.orderable_models()
        if m != DEFAULT_MODEL and not CATALOG.get(m).image_required
    )
    view = await open_settings(world)
    await world.interact(submission(view, {"default_model": model}))
    assert (await settings_now(world)).default_model == model

    # A typed /sora without --model: EvoLink gets the workspace's model.
    await world.command("a paper boat", user=ALICE)
    job = await world.wait_job(lambda j: j.task_id is not None)
    assert job.request.model == model
    [submit] = [r for r in world.rc.simulator.requests if r.kind == "submit"]
    assert submit.json["model"] == model

    # `/sora` alone opens the video form with that model preselected.
    seen = len(world.fake.ok_calls_to("views.open"))
    await world.command("", user=ALICE, trigger_id="trig-form")
    calls = await world.fake.wait_for(
        lambda: (c := world.fake.ok_calls_to("views.open")) and len(c) > seen and c
    )
    form = blocks_by_id(calls[-1].args["view"])
    assert form["model"]["element"]["initial_option"]["value"] == model


@pytest.fixture
async def oauth_fake() -> AsyncIterator[FakeSlackOAuth]:
    server = FakeSlackOAuth()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


async def test_installed_workspaces_each_see_and_change_their_own_with_their_own_token(
    oauth_fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    team_a, team_b, fake = "T0AAA", "T0BBB", oauth_fake
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        for team in (team_a, team_b):
            status, page = await install(world, team)
            assert status == 200, page
        token_b = fake.token_of(team_b)
        service = world.rc.core.service

        status, _ = await oauth_command(
            world, "admin settings", team=team_b, user=ADMIN, channel=GENERAL
        )
        assert status == 200
        [opened] = await fake.wait_for(lambda: fake.ok_calls_to("views.open"))
        assert opened.token == token_b
        status, body = await world.interact(
            submission(opened.args["view"], {"max_jobs_per_user": "7"}, team=team_b)
        )
        assert status == 200 and response_json(body) == {}

        b = await service.workspace_settings(OPS, "slack", team_b)
        a = await service.workspace_settings(OPS, "slack", team_a)
        assert b.max_jobs_per_user == 7 and b.overridden == {"max_jobs_per_user"}
        assert a.overridden == frozenset() and a.max_jobs_per_user != 7
        [told] = await fake.wait_for(lambda: fake.ok_calls_to("chat.postEphemeral"))
        assert told.token == token_b
        assert {c.token for c in fake.calls if c.method in ("views.open", "users.info")} == {
            token_b
        }
