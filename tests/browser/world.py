"""A whole bot for the browser tests: the real bot on 127.0.0.1 (running_core, with
PUBLIC_BASE_URL its own address) with Slack as its platform, against the fake Slack and the
EvoLink simulator, reached only through signed requests — as tests/adapters/slack does.

`GalleryWorld` orders videos with real `/sora` commands, asks for `/sora gallery` and takes
the signed link out of what the fake Slack received (the command's answer or a response_url
post), so a browser opens exactly what a person would click.

Budgets are sized from the catalog and the price list (tests/prices.py), never written down:
each person may spend `LIMIT`: Alice's two videos fit, her third (default) request does not
and offers "Ask an admin"; Bob's two default videos fit.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.slack import admin_render
from bot.domain.models import Job, JobStatus
from bot.infra.simulator import Simulator
from bot.services.approvals import Approval
from tests.adapters.slack.actions import buttons, click, response, responses
from tests.adapters.slack.conftest import ADMIN, ALICE, BOB, WAIT, SlackWorld, slack_bot_on
from tests.adapters.slack.fake_slack import FakeSlack
from tests.prices import CATALOG, DEFAULT_MODEL, UNIT, price_of
from tests.support import running_simulator

__all__ = ["ADMIN", "ALICE", "BOB", "GalleryWorld", "gallery_world"]

ADMINS_CHANNEL = "C0ADMINS"


def other_model() -> str:
    """A text-to-video model that is not the default (for the model filter)."""
    for name in CATALOG.names(selectable_only=True):
        spec = CATALOG.get(name)
        if name != DEFAULT_MODEL and not spec.image_required and not spec.requires_base_task:
            return name
    raise AssertionError("the catalog has one text-to-video model only")


OTHER_MODEL = other_model()
OTHER_PRICE = price_of(f"a cat --model {OTHER_MODEL}")
#: What each person may spend: Alice's two videos (one of each model) fit and leave less than
#: a third default one costs; Bob's two default ones fit.
LIMIT = UNIT + max(UNIT, OTHER_PRICE)
_URL = re.compile(r"https?://127\.0\.0\.1:\d+/[^\s>|\"'\\]+")


@dataclass
class GalleryWorld:
    slack: SlackWorld
    sim: Simulator

    @property
    def fake(self) -> FakeSlack:
        return self.slack.fake

    @property
    def base_url(self) -> str:
        return self.slack.rc.base_url

    async def order(self, text: str, user: str) -> Job:
        """`/sora <text>` from `user`; the job once it is delivered."""
        before = {r["id"] for r in await self.slack.job_rows()}
        status, _ = await self.slack.command(text, user=user)
        assert status == 200
        new = await self.slack.wait_job(
            lambda j: j.id not in before and j.requester.user == user and j.status.terminal
        )
        assert new.status == JobStatus.DELIVERED, new
        return new

    async def gallery_link(self, user: str) -> str:
        """`/sora gallery` from `user`; the signed link it answers with (privately)."""
        rid = f"cmd-{user}"
        seen = len(responses(self.slack, rid))
        status, ack = await self.slack.command("gallery", user=user)
        assert status == 200
        found = _URL.findall(ack)
        if not found:
            answer = await response(self.slack, rid, seen + 1)
            assert answer.get("response_type", "ephemeral") == "ephemeral", answer
            found = _URL.findall(json.dumps(answer))
        assert found, f"no link in the answer to /sora gallery: {ack!r}"
        return str(found[0])

    async def ask_an_admin(self, text: str, user: str) -> Approval:
        """A request over `user`'s budget, then its "Ask an admin" button: the approval."""
        rid = f"cmd-{user}"
        seen = len(responses(self.slack, rid))
        await self.slack.command(text, user=user)
        refusal = await response(self.slack, rid, seen + 1)
        (ask,) = buttons(refusal["blocks"])
        assert ask["action_id"] == admin_render.ACTION_ASK
        status, _ = await self.slack.interact(
            click(self.slack, admin_render.ACTION_ASK, str(ask["value"]), user, rid="ask")
        )
        assert status == 200
        await response(self.slack, "ask")
        service = self.slack.rc.core.service

        async def recorded() -> Approval:
            while True:
                for approval in await service.pending_approvals("cli", "slack"):
                    if approval.requester.user == user and approval.admin_refs:
                        return approval
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(recorded(), WAIT)


@asynccontextmanager
async def gallery_world(tmp_path: Path, **settings: Any) -> AsyncIterator[GalleryWorld]:
    settings.setdefault("user_credits_per_period", str(LIMIT))
    settings.setdefault("slack_admin_channel", ADMINS_CHANNEL)
    async with (
        running_simulator(task_seconds=0.3) as sim,
        FakeSlack() as fake,
        slack_bot_on(fake, tmp_path, sim, **settings) as slack,
    ):
        yield GalleryWorld(slack, sim)
