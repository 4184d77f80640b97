"""Fixtures: a fake Slack Web API on 127.0.0.1:0 and the real bot (core + bolt AsyncApp) in HTTP
mode, reached only through signed requests to its own `POST /slack/events`.

`slack_bot_on(fake, tmp_path, sim)` builds it the way `sora-bot run` does: `running_core`
(real SQLite file, EvoLink simulator, web server) with `SlackRuntime` as its platform, which
adds the route, pointed at the fake by `SLACK_API_URL`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import SlackRuntime
from bot.domain.models import Job
from bot.infra.simulator import Simulator
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    TEAM_ID,
    FakeSlack,
    event_body,
    form_headers,
    json_headers,
    payload_body,
    slash_command_body,
)
from tests.support import RunningCore, running_core

WAIT = 10.0
ALICE = "U0ALICE"
BOB = "U0BOB"
ADMIN = "U0ADMIN"
GENERAL = "C0GENERAL"


@dataclass
class SlackWorld:
    fake: FakeSlack
    rc: RunningCore
    runtime: SlackRuntime
    http: aiohttp.ClientSession

    @property
    def events_url(self) -> str:
        return f"{self.rc.base_url}/slack/events"

    async def post(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(self.events_url, data=body.encode(), headers=headers) as resp:
            return resp.status, await resp.text()

    async def command(
        self, text: str, *, user: str = ALICE, channel: str = GENERAL, trigger_id: str = "trig-1"
    ) -> tuple[int, str]:
        body = slash_command_body(
            text,
            user=user,
            channel=channel,
            trigger_id=trigger_id,
            response_url=self.fake.response_url(f"cmd-{user}"),
        )
        return await self.post(body, form_headers(body))

    async def interact(self, payload: dict[str, Any]) -> tuple[int, str]:
        body = payload_body(payload)
        return await self.post(body, form_headers(body))

    async def event(self, event: dict[str, Any]) -> tuple[int, str]:
        body = event_body(event)
        return await self.post(body, json_headers(body))

    async def job_rows(self) -> list[dict[str, Any]]:
        rows = await self.rc.core.store.fetchall("SELECT id, status, user_id AS user FROM jobs")
        return [dict(r) for r in rows]

    async def wait_job(self, predicate: Callable[[Job], bool], job_id: str | None = None) -> Job:
        """Poll the store until a job (the only one, or `job_id`) satisfies `predicate`."""

        async def loop() -> Job:
            while True:
                rows = await self.job_rows()
                ids = [job_id] if job_id else [r["id"] for r in rows]
                for jid in ids:
                    job = await self.rc.core.service.get_job(jid)
                    if predicate(job):
                        return job
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(loop(), WAIT)


def user_payload(user: str = ALICE) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID}


@asynccontextmanager
async def slack_bot_on(
    fake: FakeSlack, tmp_path: Path, sim: Simulator, **settings: Any
) -> AsyncIterator[SlackWorld]:
    settings.setdefault("admin_user_ids", f"slack:{ADMIN}")
    async with running_core(
        tmp_path,
        sim,
        platforms=[SlackRuntime],
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        **settings,
    ) as rc:
        runtime = rc.platforms[0]
        assert isinstance(runtime, SlackRuntime)
        # The start-up token check (auth.test) is done; tests see only what came after it.
        assert fake.calls[0].method == "auth.test"
        del fake.calls[0]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http:
            yield SlackWorld(fake, rc, runtime, http)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def world(fake: FakeSlack, tmp_path: Path, sim: Simulator) -> AsyncIterator[SlackWorld]:
    async with slack_bot_on(fake, tmp_path, sim) as w:
        yield w


def response_json(text: str) -> dict[str, Any]:
    return json.loads(text) if text else {}
