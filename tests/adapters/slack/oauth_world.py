"""A bot in Slack installation mode (SLACK_CLIENT_ID/SECRET) against `FakeSlackOAuth`, and the
installer's side of bolt's OAuth flow over real HTTP on 127.0.0.1.

    async with oauth_bot_on(fake, tmp_path, sim) as world:
        status, page = await install(world, "T0AAA")        # GET /slack/install, then the redirect
        await command(world, "a boat", team="T0AAA")        # a signed /sora from that workspace
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from adapters.slack import SlackRuntime
from bot.infra.simulator import Simulator
from tests.adapters.slack.conftest import ADMIN, WAIT, SlackWorld
from tests.adapters.slack.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeSlackOAuth
from tests.adapters.slack.fake_slack import (
    SIGNING_SECRET,
    event_body,
    form_headers,
    json_headers,
    slash_command_body,
)
from tests.support import running_core

STATE_COOKIE = "slack-app-oauth-state"


@asynccontextmanager
async def oauth_bot_on(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator, **settings: Any
) -> AsyncIterator[SlackWorld]:
    settings.setdefault("admin_user_ids", f"slack:{ADMIN}")
    async with running_core(
        tmp_path,
        sim,
        platforms=[SlackRuntime],
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        **settings,
    ) as rc:
        runtime = rc.platforms[0]
        assert isinstance(runtime, SlackRuntime) and runtime.installs is not None
        timeout = aiohttp.ClientTimeout(total=WAIT)
        # The state cookie is set `Secure` for 127.0.0.1: the installer sends it by hand.
        jar = aiohttp.DummyCookieJar()
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=jar) as http:
            yield SlackWorld(fake, rc, runtime, http)


@dataclass
class InstallPage:
    status: int
    html: str
    authorize_url: str
    state: str
    cookie: str | None


async def install_page(world: SlackWorld) -> InstallPage:
    """GET /slack/install: bolt's "Add to Slack" page, its authorize link and state cookie."""
    async with world.http.get(f"{world.rc.base_url}/slack/install") as resp:
        html = await resp.text()
        cookies = resp.headers.getall("Set-Cookie", [])
        status = resp.status
    found = re.search(r'href="([^"]*oauth/v2/authorize[^"]*)"', html)
    url = (found.group(1) if found else "").replace("&amp;", "&")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    state = query.get("state", [""])[0]
    cookie = next((c.split(";")[0] for c in cookies if c.startswith(STATE_COOKIE + "=")), None)
    return InstallPage(status, html, url, state, cookie)


async def redirect(world: SlackWorld, code: str, state: str, cookie: str | None) -> tuple[int, str]:
    """Slack sending the installer back: GET /slack/oauth_redirect?code&state (+ the cookie)."""
    headers = {"Cookie": cookie} if cookie else {}
    async with world.http.get(
        f"{world.rc.base_url}/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers=headers,
    ) as resp:
        return resp.status, await resp.text()


async def install(
    world: SlackWorld, team: str, *, rotating: bool = False, expires_in: int = 43200
) -> tuple[int, str]:
    """The whole install of workspace `team`: page, Slack's consent (a code), redirect."""
    assert isinstance(world.fake, FakeSlackOAuth)
    page = await install_page(world)
    assert page.status == 200 and page.state and page.cookie
    code = world.fake.grant(team, rotating=rotating, expires_in=expires_in)
    return await redirect(world, code, page.state, page.cookie)


async def command(
    world: SlackWorld, text: str, *, team: str, user: str, channel: str
) -> tuple[int, str]:
    body = slash_command_body(
        text,
        user=user,
        channel=channel,
        team=team,
        response_url=world.fake.response_url(f"cmd-{team}-{user}"),
    )
    return await world.post(body, form_headers(body))


async def event(world: SlackWorld, payload: dict[str, Any], *, team: str) -> tuple[int, str]:
    body = event_body(payload, team=team)
    return await world.post(body, json_headers(body))


async def installation_rows(world: SlackWorld) -> list[dict[str, Any]]:
    found = await world.rc.core.store.fetchall(
        "SELECT kind, team_id, user_id, data_json FROM slack_installations ORDER BY kind, team_id"
    )
    return [dict(r) for r in found]
