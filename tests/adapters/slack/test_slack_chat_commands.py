"""`/sora help | credits | jobs | cancel <id>` on Slack: the one chat parser decides, as on the
console and in Discord's prompt; none of them orders a video, holds credits or calls EvoLink."""

from __future__ import annotations

import pytest

from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.adapters.slack.actions import response
from tests.adapters.slack.conftest import ALICE, SlackWorld
from tests.adapters.slack.fake_slack import TEAM_ID


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("help", "/sora credits, /sora jobs, /sora cancel <job id>"),
        ("credits", "left"),
        ("jobs", ""),
        ("cancel", "Which job?"),
        ("cancel jnope", "There is no job"),
    ],
)
async def test_chat_sub_commands_answer_and_order_nothing(
    world: SlackWorld, sim: Simulator, text: str, expect: str
) -> None:
    status, _ = await world.command(text)
    assert status == 200
    answer = await response(world, f"cmd-{ALICE}")
    assert expect in answer["text"] and answer["response_type"] == "ephemeral"
    await world.runtime.idle()
    assert await world.job_rows() == []
    assert [r for r in sim.requests if r.kind == "submit"] == []
    alice = Requester(platform="slack", workspace=TEAM_ID, user=ALICE)
    assert (await world.rc.core.service.balance(alice)).held == 0
