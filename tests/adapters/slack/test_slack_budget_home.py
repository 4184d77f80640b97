"""Budgets, App Home, admin commands and the job buttons, through signed requests."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.chat_commands import usage_text
from bot.domain.models import JobStatus, Requester, fmt_credits
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import (
    ADMIN,
    ALICE,
    BOB,
    GENERAL,
    SlackWorld,
    slack_bot_on,
    user_payload,
)
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack
from tests.prices import UNIT


def alice() -> Requester:
    return Requester(platform="slack", workspace=TEAM_ID, user=ALICE)


def responses_to(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return world.fake.responses.get(f"cmd-{user}", [])


async def reply_to(world: SlackWorld, user: str, count: int = 1) -> str:
    got = await world.fake.wait_for(lambda: len(responses_to(world, user)) >= count)
    assert got
    return str(responses_to(world, user)[count - 1]["text"])


async def test_over_budget_is_refused_in_private_and_sends_nothing(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, user_credits_per_period="2") as world:
        status, _ = await world.command("a paper boat")  # a default request
        assert status == 200
        text = await reply_to(world, ALICE)
        assert responses_to(world, ALICE)[0]["response_type"] == "ephemeral"
        # The core's words: the price, what is left, when it resets.
        assert (
            f"costs {fmt_credits(UNIT)} credits" in text
            and "2 credits left" in text
            and "resets" in text
        )
        assert [r for r in sim.requests if r.kind != "pricing"] == []
        assert await world.job_rows() == []
        balance = await world.rc.core.service.balance(alice())
        assert balance.held == Decimal(0) and balance.used == Decimal(0)
        assert fake.calls_to("chat.postMessage") == []


async def test_app_home_shows_figures_and_admins_see_team_usage(world: SlackWorld) -> None:
    await world.command("a paper boat")
    job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    charged = job.charged or Decimal(0)

    status, _ = await world.event(
        {
            "type": "app_home_opened",
            "user": ALICE,
            "tab": "home",
            "channel": "D0HOME",
            "event_ts": "1700000000.1",
        }
    )
    assert status == 200
    calls = await world.fake.wait_for(lambda: world.fake.ok_calls_to("views.publish"))
    home = calls[0].args
    assert home["user_id"] == ALICE and home["view"]["type"] == "home"
    text = json.dumps(home["view"], ensure_ascii=False)
    assert "allowance 300 · used" in text
    assert f"used {fmt_credits(charged)} · held 0 · left {fmt_credits(300 - charged)}" in text
    assert "a paper boat" in text and "delivered" in text
    assert "/media/" in text  # the watch link
    assert "Team usage" not in text

    await world.event(
        {
            "type": "app_home_opened",
            "user": ADMIN,
            "tab": "home",
            "channel": "D0HOME2",
            "event_ts": "1700000000.2",
        }
    )
    await world.fake.wait_for(lambda: len(world.fake.ok_calls_to("views.publish")) > 1)
    calls = world.fake.ok_calls_to("views.publish")
    admin_view = json.dumps(calls[1].args["view"])
    assert calls[1].args["user_id"] == ADMIN
    assert "Team usage" in admin_view and f"<@{ALICE}>" in admin_view


async def test_credits_jobs_and_help(world: SlackWorld) -> None:
    await world.command("credits")
    assert "left 300" in await reply_to(world, ALICE)
    await world.command("jobs")
    assert "no videos yet" in await reply_to(world, ALICE, 2)
    status, _text = await world.command("help")
    assert status == 200
    help_text = await reply_to(world, ALICE, 3)
    # The same help as every surface: the grammar and each model's prices from the price list.
    assert "--duration" in help_text and world.rc.core.service.usage_text() in help_text
    service = world.rc.core.service
    assert service.usage_text() != usage_text(service.catalog, service.settings.default_model)


async def test_admin_commands_need_an_admin(world: SlackWorld) -> None:
    await world.command(f"admin grant <@{BOB}|bob> 50", user=ALICE)
    assert "admin" in await reply_to(world, ALICE)
    bob = Requester(platform="slack", workspace=TEAM_ID, user=BOB)
    assert (await world.rc.core.service.balance(bob)).granted == Decimal(0)

    await world.command(f"admin grant <@{BOB}|bob> 50 hackathon", user=ADMIN)
    assert "Granted 50" in await reply_to(world, ADMIN)
    await world.command(f"admin set-limit {BOB} 20", user=ADMIN)
    await reply_to(world, ADMIN, 2)
    await world.command("admin team-budget 1000", user=ADMIN)
    await reply_to(world, ADMIN, 3)
    balance = await world.rc.core.service.balance(bob)
    assert (balance.limit, balance.granted) == (Decimal(20), Decimal(50))
    assert balance.team_budget == Decimal(1000)
    await world.command("admin usage", user=ADMIN)
    assert "Team usage" in await reply_to(world, ADMIN, 4)
    audit = await world.rc.core.service.audit_log()
    assert [row["action"] for row in audit] == ["grant", "set-limit", "set-team-budget"]
    assert {row["actor"] for row in audit} == {f"slack:{ADMIN}"}


def button(world: SlackWorld, action: str, job_id: str, user: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": user_payload(user),
        "team": {"id": TEAM_ID},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": "trig-button",
        "container": {"type": "message", "channel_id": GENERAL},
        "channel": {"id": GENERAL, "name": "general"},
        "response_url": world.fake.response_url(f"btn-{user}"),
        "actions": [
            {
                "action_id": action,
                "block_id": f"job:{job_id}",
                "value": job_id,
                "type": "button",
                "action_ts": "1700000000.3",
            }
        ],
    }


async def test_once_evolink_has_the_job_cancel_is_gone_and_a_late_press_says_why(
    world: SlackWorld, sim: Simulator
) -> None:
    """EvoLink bills every task it takes: the submitted job's progress message has no Cancel
    button, and a press that left before the update (or `/sora cancel`) is answered plainly,
    after the permission check, with nothing released."""
    sim.config.task_seconds = 30
    await world.command("a slow sunrise")
    job = await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED and bool(j.surface.thread))

    def shown_without_cancel() -> bool:
        updates = [
            c
            for c in world.fake.ok_calls_to("chat.update")
            if c.args.get("ts") == job.surface.thread
        ]
        return bool(updates) and "sora_cancel" not in json.dumps(updates[-1].args.get("blocks"))

    await world.fake.wait_for(shown_without_cancel)

    status, _ = await world.interact(button(world, "sora_cancel", job.id, BOB))
    assert status == 200
    denied = await world.fake.wait_for(lambda: world.fake.responses.get(f"btn-{BOB}"))
    assert "Only the person" in denied[0]["text"]

    await world.interact(button(world, "sora_cancel", job.id, ALICE))
    late = await world.fake.wait_for(lambda: world.fake.responses.get(f"btn-{ALICE}"))
    assert "EvoLink is already rendering" in late[0]["text"] and "charged" in late[0]["text"]
    assert (await world.rc.core.service.get_job(job.id)).status == JobStatus.SUBMITTED
    assert (await world.rc.core.service.balance(alice())).held == job.reserved


async def test_again_button_makes_a_second_job(world: SlackWorld, sim: Simulator) -> None:
    await world.command("a red kite")
    first = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
    await world.interact(button(world, "sora_again", first.id, ALICE))
    second = await world.wait_job(lambda j: j.id != first.id and j.status == JobStatus.DELIVERED)
    assert second.request == first.request
    assert len(world.fake.shared_files) == 2
    assert second.surface.thread != first.surface.thread
    assert len([r for r in sim.requests if r.kind == "submit"]) == 2
