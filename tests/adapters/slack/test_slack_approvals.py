"""Asking an admin, deciding, and alerts, through signed requests and the fake Slack.

A refused `/sora` offers "Ask an admin" → the admins get Approve/Deny in SLACK_ADMIN_CHANNEL
(or DMs) → exactly one decision counts → the requester is told, and an approved video is made
in the channel it was asked from.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.slack import admin_render
from bot.domain.models import JobStatus, Requester, fmt_credits
from bot.infra.simulator import Simulator, clip_for
from bot.services.approvals import Approval
from tests.adapters.slack.actions import (
    ADMINS_CHANNEL,
    buttons,
    click,
    posts_to,
    response,
    responses,
    text_of,
    updates_of,
)
from tests.adapters.slack.conftest import ADMIN, ALICE, BOB, GENERAL, WAIT, SlackWorld, slack_bot_on
from tests.adapters.slack.fake_slack import TEAM_ID, FakeSlack
from tests.prices import DEFAULT_SECONDS, UNIT

SECONDS = DEFAULT_SECONDS
PRICE = fmt_credits(UNIT)  # a default request, as the price list prices it
ADMIN2 = "U0ADMIN2"
TWO_ADMINS = f"slack:{ADMIN},slack:{ADMIN2}"
TIGHT = {"user_credits_per_period": "2", "slack_admin_channel": ADMINS_CHANNEL}


def alice() -> Requester:
    return Requester(platform="slack", workspace=TEAM_ID, user=ALICE)


async def refused_with_button(world: SlackWorld, text: str = f"a paper boat -d {SECONDS}") -> str:
    """Send a request that does not fit; return the "Ask an admin" button's value."""
    await world.command(text)
    refusal = await response(world, f"cmd-{ALICE}")
    assert refusal["response_type"] == "ephemeral"
    assert f"costs {PRICE} credits" in refusal["text"]
    (ask,) = buttons(refusal["blocks"])
    assert ask["action_id"] == admin_render.ACTION_ASK
    return str(ask["value"])


async def asked(world: SlackWorld, value: str) -> Approval:
    """Click "Ask an admin"; return the approval once its admin message is recorded."""
    status, _ = await world.interact(
        click(world, admin_render.ACTION_ASK, value, ALICE, ephemeral=True, rid="ask")
    )
    assert status == 200
    note = await response(world, "ask")
    assert note["replace_original"] is True and "asked the admins" in note["text"]
    service = world.rc.core.service

    async def recorded() -> Approval:
        while True:
            pending = await service.pending_approvals("cli", "slack")
            if pending and pending[0].admin_refs:
                return pending[0]
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(recorded(), WAIT)


async def test_ask_approve_makes_the_video_in_the_requesters_channel(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, **TIGHT) as world:
        value = await refused_with_button(world)
        assert json.loads(value)["ch"] == GENERAL and json.loads(value)["d"] == SECONDS
        await world.runtime.idle()  # the refusal's work is over: nothing else follows it
        assert [
            r for r in sim.requests if r.kind != "pricing"
        ] == [] and await world.job_rows() == []

        approval = await asked(world, value)
        assert approval.price == UNIT and approval.requester.user == ALICE
        # The admins' message: who, what, price, their spend, expiry, Approve / Deny.
        (message,) = posts_to(world, ADMINS_CHANNEL)
        shown = text_of(message)
        assert f"<@{ALICE}>" in shown and "a paper boat" in shown and f"{PRICE} credits" in shown
        assert "used 0" in shown and "allowance 2" in shown and "expires" in shown
        assert [(b["action_id"], b["value"]) for b in buttons(message.args["blocks"])] == [
            (admin_render.ACTION_APPROVE, approval.id),
            (admin_render.ACTION_DENY, approval.id),
        ]
        ts = approval.admin_refs[ADMINS_CHANNEL]

        await world.interact(
            click(world, admin_render.ACTION_APPROVE, approval.id, ADMIN, channel=ADMINS_CHANNEL)
        )
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        shared = await fake.wait_for(lambda: fake.shared_files)
        assert shared[0].channel_id == GENERAL and shared[0].thread_ts == job.surface.thread
        assert shared[0].data == clip_for(job.request.aspect_ratio, job.request.duration)
        assert job.request.duration == SECONDS and job.requester.user == ALICE

        # The admins' message lost its buttons and says who decided; Alice heard in a DM.
        update = (await fake.wait_for(lambda: updates_of(world, ADMINS_CHANNEL, ts)))[-1]
        assert buttons(update.args["blocks"]) == []
        assert f"Approved by <@{ADMIN}>" in text_of(update)
        dms = await fake.wait_for(lambda: posts_to(world, f"D{ALICE}"))
        assert "approved your request" in dms[0].args["text"]
        balance = await world.rc.core.service.balance(alice())
        assert balance.granted == UNIT and balance.used == job.charged
        actions = [row["action"] for row in await world.rc.core.service.audit_log()]
        assert actions == ["approve"]


async def test_two_admins_approving_at_once_grant_once(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, admin_user_ids=TWO_ADMINS, **TIGHT) as world:
        approval = await asked(world, await refused_with_button(world))
        statuses = await asyncio.gather(
            *(
                world.interact(click(world, admin_render.ACTION_APPROVE, approval.id, who, rid=who))
                for who in (ADMIN, ADMIN2)
            )
        )
        assert [s for s, _ in statuses] == [200, 200]
        await world.wait_job(lambda j: j.requester.user == ALICE)  # the acks come first
        decided = await world.rc.core.service.get_approval(approval.id)
        assert decided.status == "approved"
        winner = decided.decided_by.partition(":")[2] if decided.decided_by else ""
        loser = ADMIN2 if winner == ADMIN else ADMIN
        refused = await response(world, loser)
        assert f"already approved by <@{winner}>" in refused["text"]
        await world.runtime.idle()  # both decisions are over: the winner was told nothing
        assert responses(world, winner) == []

        await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        assert len(await world.job_rows()) == 1
        assert len([r for r in sim.requests if r.kind == "submit"]) == 1
        assert (await world.rc.core.service.balance(alice())).granted == UNIT
        actions = [row["action"] for row in await world.rc.core.service.audit_log()]
        assert actions == ["approve"]


async def test_non_admin_is_refused_and_deny_tells_the_requester(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, **TIGHT) as world:
        approval = await asked(world, await refused_with_button(world))
        ts = approval.admin_refs[ADMINS_CHANNEL]

        await world.interact(click(world, admin_render.ACTION_APPROVE, approval.id, BOB))
        refused = await response(world, f"{admin_render.ACTION_APPROVE}-{BOB}")
        assert "Only budget admins" in refused["text"]
        assert refused["response_type"] == "ephemeral"
        assert (await world.rc.core.service.get_approval(approval.id)).status == "pending"

        await world.interact(click(world, admin_render.ACTION_DENY, approval.id, ADMIN))
        dms = await fake.wait_for(lambda: posts_to(world, f"D{ALICE}"))
        assert (
            "declined your request" in dms[0].args["text"] and "a paper boat" in dms[0].args["text"]
        )
        update = (await fake.wait_for(lambda: updates_of(world, ADMINS_CHANNEL, ts)))[-1]
        assert f"Declined by <@{ADMIN}>" in text_of(update) and buttons(update.args["blocks"]) == []
        # A late Approve changes nothing and says why.
        await world.interact(click(world, admin_render.ACTION_APPROVE, approval.id, ADMIN))
        late = await response(world, f"{admin_render.ACTION_APPROVE}-{ADMIN}")
        assert f"already denied by <@{ADMIN}>" in late["text"]
        await world.runtime.idle()
        assert (
            await world.job_rows() == [] and [r for r in sim.requests if r.kind != "pricing"] == []
        )
        assert (await world.rc.core.service.balance(alice())).granted == Decimal(0)


async def test_without_an_admin_channel_admins_get_dms_and_expiry_is_told(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    settings: dict[str, Any] = {"user_credits_per_period": "2", "admin_user_ids": TWO_ADMINS}
    async with slack_bot_on(fake, tmp_path, sim, **settings) as world:
        approval = await asked(world, await refused_with_button(world))
        assert set(approval.admin_refs) == {f"D{ADMIN}", f"D{ADMIN2}"}
        for admin in (ADMIN, ADMIN2):
            (dm,) = posts_to(world, f"D{admin}")
            assert len(buttons(dm.args["blocks"])) == 2

        # Nobody decides in time.
        async with world.rc.core.store.transaction() as tx:
            await tx.execute(
                "UPDATE approvals SET expires_at = '2000-01-01T00:00:00.000+00:00' WHERE id = ?",
                (approval.id,),
            )
        assert await world.rc.core.service.oversight.expire_due() == 1
        told = await fake.wait_for(lambda: posts_to(world, f"D{ALICE}"))
        assert "expired" in told[0].args["text"]
        for admin in (ADMIN, ADMIN2):
            ts = approval.admin_refs[f"D{admin}"]
            update = updates_of(world, f"D{admin}", ts)[-1]
            assert "Expired" in text_of(update) and buttons(update.args["blocks"]) == []


async def test_app_home_lists_pending_requests_and_decides_from_there(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, **TIGHT) as world:
        approval = await asked(world, await refused_with_button(world))
        await world.event({"type": "app_home_opened", "user": ADMIN, "tab": "home"})
        home = (await fake.wait_for(lambda: fake.ok_calls_to("views.publish")))[0].args["view"]
        shown = json.dumps(home)
        assert "Requests waiting for your decision" in shown and f"<@{ALICE}>" in shown
        assert (admin_render.ACTION_APPROVE, approval.id) in [
            (b["action_id"], b["value"]) for b in buttons(home["blocks"])
        ]

        await world.interact(click(world, admin_render.ACTION_DENY, approval.id, ADMIN, home=True))
        republished = await fake.wait_for(lambda: fake.ok_calls_to("views.publish")[1:])
        assert "Requests waiting" not in json.dumps(republished[0].args["view"])
        assert (await world.rc.core.service.get_approval(approval.id)).status == "denied"

        # Alice's own Home has no admin section.
        await world.event({"type": "app_home_opened", "user": ALICE, "tab": "home"})
        mine = await fake.wait_for(lambda: fake.ok_calls_to("views.publish")[2:])
        assert "Requests waiting" not in json.dumps(mine[0].args["view"])


async def test_a_forged_ask_value_is_rebuilt_and_refused(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, **TIGHT) as world:
        value = json.loads(await refused_with_button(world))
        value["d"] = 999  # no model makes 999 s videos
        await world.interact(
            click(world, admin_render.ACTION_ASK, json.dumps(value), ALICE, rid="forged")
        )
        refused = await response(world, "forged")
        assert refused["text"].startswith(":warning:") and refused["replace_original"] is False
        await world.interact(click(world, admin_render.ACTION_ASK, "not json", ALICE, rid="junk"))
        assert "no longer works" in (await response(world, "junk"))["text"]
        await world.runtime.idle()
        assert await world.rc.core.service.pending_approvals("cli") == []
        assert posts_to(world, ADMINS_CHANNEL) == []


async def test_a_tampered_ask_value_cannot_point_the_image_at_an_internal_host(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    async with slack_bot_on(fake, tmp_path, sim, **TIGHT) as world:
        core = world.rc.core
        value = json.loads(await refused_with_button(world))
        value["img"] = "http://169.254.169.254/latest/meta-data"
        await world.interact(
            click(world, admin_render.ACTION_ASK, json.dumps(value), ALICE, rid="tampered")
        )
        refused = await response(world, "tampered")
        assert refused["text"].startswith(":warning:") and refused["replace_original"] is False
        assert "public link" in refused["text"] and "169.254.169.254" in refused["text"]
        # Nothing to approve, nothing held or granted, nothing sent to the admins or EvoLink.
        await world.runtime.idle()
        assert await core.service.pending_approvals("cli") == []
        assert posts_to(world, ADMINS_CHANNEL) == []
        assert await core.store.fetchall("SELECT id FROM ledger") == []
        assert (
            await world.job_rows() == [] and [r for r in sim.requests if r.kind != "pricing"] == []
        )

        # The bot's own signed /media link (a re-hosted Slack image) still asks, on 127.0.0.1.
        own = core.media.url_for(core.media.media_dir / "slack-F1.img")
        assert own is not None
        value["img"] = own
        approval = await asked(world, json.dumps(value))
        assert approval.request.image_url == own


async def test_budget_alerts_reach_the_admin_channel_or_dms(
    fake: FakeSlack, tmp_path: Path, sim: Simulator
) -> None:
    settings: dict[str, Any] = {
        "team_credits_per_period": str(UNIT * Decimal("1.6")),
        "slack_admin_channel": ADMINS_CHANNEL,
    }
    async with slack_bot_on(fake, tmp_path, sim, **settings) as world:
        await world.command("a paper boat")  # 62.5 % of the team's budget: it passes 50 %
        await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        alerts = await fake.wait_for(lambda: posts_to(world, ADMINS_CHANNEL))
        assert len(alerts) == 1
        assert "Budget alert" in alerts[0].args["text"] and "62%" in alerts[0].args["text"]
        assert posts_to(world, f"D{ADMIN}") == []

    fake.calls.clear()
    (tmp_path / "dm").mkdir()
    async with slack_bot_on(
        fake, tmp_path / "dm", sim, user_credits_per_period=str(UNIT * Decimal("1.2"))
    ) as world:  # no admin channel: the admins' DMs; 83 % passes a user's 80 %
        await world.command("a paper boat")
        await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        alerts = await fake.wait_for(lambda: posts_to(world, f"D{ADMIN}"))
        assert f"<@{ALICE}>" in alerts[0].args["text"] and "83%" in alerts[0].args["text"]
