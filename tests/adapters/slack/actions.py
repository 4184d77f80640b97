"""Helpers for the budget tests: block_actions payloads as Slack sends them, and reading what the
fake Slack received (messages to a channel, their buttons, response_url answers)."""

from __future__ import annotations

import json
from typing import Any

from tests.adapters.slack.conftest import GENERAL, SlackWorld, user_payload
from tests.adapters.slack.fake_slack import TEAM_ID, SlackCall

ADMINS_CHANNEL = "C0ADMINS"


def click(
    world: SlackWorld,
    action_id: str,
    value: str,
    user: str,
    *,
    channel: str = GENERAL,
    rid: str | None = None,
    message_ts: str = "1700000000.000001",
    ephemeral: bool = False,
    home: bool = False,
) -> dict[str, Any]:
    """A button press: in a message (with a response_url named `rid`) or in the App Home."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_payload(user),
        "team": {"id": TEAM_ID},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": f"trig-{action_id}-{user}",
        "actions": [
            {
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "type": "button",
                "action_ts": "1700000000.4",
            }
        ],
    }
    if home:
        payload["container"] = {"type": "view", "view_id": "VHOME"}
        payload["view"] = {"id": "VHOME", "type": "home", "team_id": TEAM_ID}
        return payload
    payload["container"] = {
        "type": "message",
        "channel_id": channel,
        "message_ts": message_ts,
        "is_ephemeral": ephemeral,
    }
    payload["channel"] = {"id": channel, "name": channel.lower()}
    payload["response_url"] = world.fake.response_url(rid or f"{action_id}-{user}")
    return payload


def posts_to(world: SlackWorld, channel: str) -> list[SlackCall]:
    return [c for c in world.fake.ok_calls_to("chat.postMessage") if c.args["channel"] == channel]


def updates_of(world: SlackWorld, channel: str, ts: str) -> list[SlackCall]:
    return [
        c
        for c in world.fake.ok_calls_to("chat.update")
        if c.args["channel"] == channel and c.args["ts"] == ts
    ]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b.get("type") == "actions" for e in b["elements"]]


def text_of(call: SlackCall) -> str:
    """A message's text and blocks, as one searchable string."""
    return str(call.args.get("text", "")) + json.dumps(call.args.get("blocks") or [])


def responses(world: SlackWorld, rid: str) -> list[dict[str, Any]]:
    return world.fake.responses.get(rid, [])


async def response(world: SlackWorld, rid: str, count: int = 1) -> dict[str, Any]:
    """The `count`-th answer posted to response_url `rid` (waits for it)."""
    await world.fake.wait_for(lambda: len(responses(world, rid)) >= count)
    return responses(world, rid)[count - 1]
