"""A Slack workspace admin is a budget admin of that workspace only; ADMIN_USER_IDS of all.

BOSS is an admin of TEAM_ID according to `users.info` (and not in ADMIN_USER_IDS); OPS is in
ADMIN_USER_IDS; Carol's job and request belong to another workspace, OTHER. Every check is on
effects: the job, the ledger, the approval, the text the fake Slack received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack import admin_render
from bot.domain.errors import PermissionDenied
from bot.domain.models import Job, JobStatus, Requester, Surface
from bot.infra.simulator import Simulator
from tests.adapters.slack.actions import ADMINS_CHANNEL, click, response
from tests.adapters.slack.conftest import GENERAL, SlackWorld, slack_bot_on
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack, form_headers, slash_command_body

BOSS = "U0BOSS"
OPS = "U0OPS"
CAROL = "U0CAROL"
OTHER = "T0OTHER"


@pytest.fixture
async def two_teams(fake: FakeSlack, tmp_path: Path, sim: Simulator) -> AsyncIterator[SlackWorld]:
    fake.workspace_admins.add(BOSS)
    async with slack_bot_on(
        fake, tmp_path, sim, admin_user_ids=f"slack:{OPS}", slack_admin_channel=ADMINS_CHANNEL
    ) as world:
        yield world


def person(user: str, team: str = TEAM_ID, **facts: bool) -> Requester:
    return Requester(platform="slack", workspace=team, user=user, **facts)


async def carols_running_job(world: SlackWorld) -> Job:
    """Carol's /sora in OTHER, held on a slow simulated task."""
    world.rc.simulator.config.task_seconds = 60
    body = slash_command_body(
        "a slow paper boat", user=CAROL, team=OTHER, response_url=world.fake.response_url("carol")
    )
    status, _ = await world.post(body, form_headers(body))
    assert status == 200
    return await world.wait_job(lambda j: j.status == JobStatus.SUBMITTED)


async def said(world: SlackWorld, text: str, user: str, count: int) -> str:
    await world.command(text, user=user)
    return str((await response(world, f"cmd-{user}", count))["text"])


async def test_a_workspace_admin_cannot_cancel_grant_limit_or_read_usage_in_another(
    two_teams: SlackWorld,
) -> None:
    world, service = two_teams, two_teams.rc.core.service
    job = await carols_running_job(world)
    carol = person(CAROL, OTHER)
    before = await service.balance(carol)
    assert before.held == job.reserved > 0

    # Cancel from TEAM_ID: refused in the words of the rule; the job and hold are untouched.
    assert "admin of its workspace" in await said(world, f"cancel {job.id}", BOSS, 1)
    assert (await service.get_job(job.id)).status == JobStatus.SUBMITTED

    # Usage, grant and set-limit act on BOSS's own workspace: OTHER does not move.
    table = await said(world, "admin usage", BOSS, 2)
    assert "Team usage" in table and CAROL.lower() not in table.lower()
    assert "Granted 50" in await said(world, f"admin grant <@{CAROL}> 50", BOSS, 3)
    await said(world, f"admin set-limit <@{CAROL}> 999", BOSS, 4)
    assert (await service.balance(person(CAROL))).granted == 50  # BOSS's team: the fact counts
    after = await service.balance(carol)
    assert (after.limit, after.granted, after.held) == (before.limit, 0, before.held)

    # BOSS as the adapter describes them, aimed at OTHER directly: all refused.
    boss = person(BOSS, workspace_admin=True)
    for attempt in (
        service.grant(boss, carol, "50"),
        service.set_limit(boss, carol, "999"),
        service.set_team_budget(boss, "slack", OTHER, "1"),
        service.usage(boss, "slack", OTHER),
    ):
        with pytest.raises(PermissionDenied, match="workspace it belongs to"):
            await attempt
    assert (await service.balance(carol)).granted == 0
    assert not [a for a in await service.audit_log() if OTHER in str(a["target"])]

    # OPS (ADMIN_USER_IDS), typing in TEAM_ID, may in OTHER.
    ops = person(OPS)
    await service.grant(ops, carol, "5")
    assert (await service.balance(carol)).granted == 5
    assert [r.user for r in await service.usage(ops, "slack", OTHER)] == [CAROL]
    # OPS passes the permission check; the job is at EvoLink, so the lifecycle refuses.
    assert "EvoLink is already rendering" in await said(world, f"cancel {job.id}", OPS, 1)
    assert (await service.get_job(job.id)).status == JobStatus.SUBMITTED
    assert (await service.balance(carol)).held == before.held


async def test_a_workspace_admin_decides_its_own_requests_only(two_teams: SlackWorld) -> None:
    world, service = two_teams, two_teams.rc.core.service
    request = service.parse("a paper boat")
    theirs = await service.ask_admin(
        person(CAROL, OTHER), request, Surface(channel=GENERAL, data={"team": OTHER})
    )
    ours = await service.ask_admin(
        person(CAROL), request, Surface(channel=GENERAL, data={"team": TEAM_ID})
    )

    async def press(approval_id: str, user: str) -> None:
        rid = f"{approval_id}-{user}"
        payload = click(
            world, admin_render.ACTION_APPROVE, approval_id, user, channel=ADMINS_CHANNEL, rid=rid
        )
        status, _ = await world.interact(payload)
        assert status == 200
        await world.runtime.idle()

    await press(theirs.id, BOSS)
    refusal = world.fake.responses[f"{theirs.id}-{BOSS}"][0]["text"]
    assert "workspace it belongs to" in refusal
    assert (await service.get_approval(theirs.id)).status == "pending"
    assert (await service.balance(person(CAROL, OTHER))).granted == 0

    await press(ours.id, BOSS)
    assert (await service.get_approval(ours.id)).decided_by == f"slack:{BOSS}"

    await press(theirs.id, OPS)
    decided = await service.get_approval(theirs.id)
    assert decided.status == "approved" and decided.decided_by == f"slack:{OPS}"


async def test_app_home_shows_the_admin_part_to_workspace_admins_only(
    two_teams: SlackWorld,
) -> None:
    world = two_teams
    for n, user in enumerate((CAROL, BOSS)):
        await world.event(
            {
                "type": "app_home_opened",
                "user": user,
                "tab": "home",
                "channel": f"D0{user}",
                "event_ts": f"1700000000.{n}",
            }
        )
        await world.fake.wait_for(lambda n=n: len(world.fake.ok_calls_to("views.publish")) > n)
    carol_view, boss_view = (
        json.dumps(c.args["view"]) for c in world.fake.ok_calls_to("views.publish")
    )
    assert "Team usage" not in carol_view and "Team usage" in boss_view
    # BOSS is in no ADMIN_USER_IDS: what Slack's users.info said made the difference.
    assert [c.args["user"] for c in world.fake.ok_calls_to("users.info")] == [CAROL, BOSS]
