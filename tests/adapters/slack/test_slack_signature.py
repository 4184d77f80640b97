"""Requests without a valid Slack signature get 401 and change nothing."""

from __future__ import annotations

import json
import time

import pytest

from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import SlackWorld
from tests.adapters.slack.fake_slack import event_body, json_headers, sign, slash_command_body


def _cases(body: str) -> dict[str, dict[str, str]]:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return {
        "unsigned": form,
        "wrong secret": {**form, **sign(body, secret="not-the-secret")},
        "stale": {**form, **sign(body, timestamp=int(time.time()) - 6 * 60)},
        "future": {**form, **sign(body, timestamp=int(time.time()) + 6 * 60)},
        "tampered": {**form, **sign(body.replace("boat", "bomb"))},
    }


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "stale", "future", "tampered"])
async def test_bad_signatures_get_401_and_do_nothing(
    world: SlackWorld, sim: Simulator, case: str
) -> None:
    body = slash_command_body("a paper boat", response_url=world.fake.response_url())
    status, _ = await world.post(body, _cases(body)[case])
    assert status == 401  # refused before any listener ran: the decision is the response
    await world.runtime.idle()  # and nothing was left running after it
    assert await world.job_rows() == []
    assert world.fake.calls == []  # not even auth.test
    assert [r for r in sim.requests if r.kind != "pricing"] == []


async def test_unsigned_event_gets_401(world: SlackWorld) -> None:
    body = event_body({"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
    status, _ = await world.post(body, {"Content-Type": "application/json"})
    assert status == 401
    await world.runtime.idle()
    assert world.fake.calls == []


async def test_url_verification_challenge_is_answered(world: SlackWorld) -> None:
    # What Slack sends when the events URL is saved in the app settings.
    body = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"})
    status, text = await world.post(body, json_headers(body))
    assert status == 200 and "c-123" in text
    status, _ = await world.post(body, {"Content-Type": "application/json"})
    assert status == 401


async def test_a_correct_signature_is_accepted(world: SlackWorld) -> None:
    # The control for the cases above: the same request, signed right, is served.
    status, _ = await world.command("credits")
    assert status == 200
    await world.fake.wait_for(lambda: world.fake.calls_to("response_url"))


async def test_a_signed_command_without_a_user_makes_no_job(
    world: SlackWorld, sim: Simulator
) -> None:
    """Found by fuzzing: a body Slack never sends (no user_id / team_id) once became a job for
    the user "None". It is answered and changes nothing."""
    import urllib.parse

    from tests.adapters.slack.fake_slack import form_headers

    body = urllib.parse.urlencode({"command": "/sora", "text": "a paper boat"})
    status, text = await world.post(body, form_headers(body))
    assert status == 200 and "did not say who sent" in text
    await world.runtime.idle()
    assert await world.job_rows() == []
    assert [r for r in sim.requests if r.kind == "submit"] == []
