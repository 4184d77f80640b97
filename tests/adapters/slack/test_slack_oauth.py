"""Installs by OAuth v2 through bolt's real flow over HTTP: the install page and its state, the
redirect saving a sealed installation, the allow-list, invalid and replayed states, token
rotation, and no token in any log line."""

from __future__ import annotations

import io
import logging
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.slack.installations import SealedInstallationStore
from bot.infra.config import Settings
from bot.infra.simulator import Simulator
from sora_bot.checks import run_checks
from tests.adapters.slack.conftest import ALICE
from tests.adapters.slack.fake_oauth import CLIENT_ID, CLIENT_SECRET, FakeSlackOAuth
from tests.adapters.slack.oauth_world import (
    command,
    install,
    install_page,
    installation_rows,
    oauth_bot_on,
    redirect,
)

TEAM_A = "T0AAA"
TEAM_C = "T0CCC"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlackOAuth]:
    async with FakeSlackOAuth() as server:
        yield server


def store_of(world: object) -> SealedInstallationStore:
    installs = world.runtime.installs  # type: ignore[attr-defined]
    assert installs is not None
    store: SealedInstallationStore = installs.store
    return store


async def test_install_page_then_redirect_saves_a_sealed_installation(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        page = await install_page(world)
        assert page.status == 200 and "Add to Slack" in page.html
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(page.authorize_url).query)
        assert query["client_id"] == [CLIENT_ID]
        assert "chat:write" in query["scope"][0].split(",")
        assert query["redirect_uri"] == [f"{world.rc.base_url}/slack/oauth_redirect"]
        assert page.cookie == f"slack-app-oauth-state={page.state}"

        code = fake.grant(TEAM_A)
        status, text = await redirect(world, code, page.state, page.cookie)
        assert status == 200, text
        assert "Thank you" in text or "installed" in text.lower()

        # The code was exchanged once, with the app's credentials; the token checked.
        assert len(fake.ok_calls_to("oauth.v2.access")) == 1
        token = fake.token_of(TEAM_A)
        assert fake.tokens_used("auth.test") == [token]
        rows = await installation_rows(world)
        assert [(r["kind"], r["team_id"]) for r in rows] == [
            ("bot", TEAM_A),
            ("installation", TEAM_A),
        ]
        assert all(token not in r["data_json"] for r in rows)  # sealed at rest
        bot = await store_of(world).async_find_bot(enterprise_id=None, team_id=TEAM_A)
        assert bot is not None and bot.bot_token == token


async def test_a_team_outside_the_allow_list_is_refused_and_nothing_saved(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim, slack_install_allowed_teams=TEAM_A) as world:
        status, text = await install(world, TEAM_C)
        assert status == 403
        assert "not available for your workspace" in text and TEAM_C in text
        assert await installation_rows(world) == []
        assert fake.uninstalled == [TEAM_C]  # the token Slack issued was given back

        status, _ = await install(world, TEAM_A)
        assert status == 200
        assert {r["team_id"] for r in await installation_rows(world)} == {TEAM_A}


async def test_invalid_missing_and_replayed_states_are_refused(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        # A state the bot never issued (with a cookie to match): refused, no code exchange.
        forged = "forged-state"
        status, text = await redirect(
            world, fake.grant(TEAM_A), forged, f"slack-app-oauth-state={forged}"
        )
        assert status == 401 and "invalid_state" in text
        # A real state but no state cookie (another browser): refused.
        page = await install_page(world)
        status, text = await redirect(world, fake.grant(TEAM_A), page.state, None)
        assert status == 400 and "invalid_browser" in text
        assert fake.calls_to("oauth.v2.access") == []

        # A good install, then the very same redirect again: the state works once.
        page = await install_page(world)
        code = fake.grant(TEAM_A)
        status, _ = await redirect(world, code, page.state, page.cookie)
        assert status == 200
        status, text = await redirect(world, code, page.state, page.cookie)
        assert status == 401 and "invalid_state" in text
        assert len(fake.calls_to("oauth.v2.access")) == 1


async def test_a_rotating_token_is_refreshed_before_use_and_saved(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    async with oauth_bot_on(fake, tmp_path, sim) as world:
        # Expires within bolt's two-hour margin: the first use refreshes it.
        status, _ = await install(world, TEAM_A, rotating=True, expires_in=600)
        assert status == 200
        first = fake.token_of(TEAM_A)
        await command(world, "credits", team=TEAM_A, user=ALICE, channel="C0AAA")
        await fake.wait_for(lambda: fake.calls_to("response_url"))
        refreshes = [
            c
            for c in fake.ok_calls_to("oauth.v2.access")
            if c.args.get("grant_type") == "refresh_token"
        ]
        assert len(refreshes) >= 1
        second = fake.token_of(TEAM_A)
        assert second != first and first not in fake.tokens
        bot = await store_of(world).async_find_bot(enterprise_id=None, team_id=TEAM_A)
        assert bot is not None and bot.bot_token == second
        assert bot.bot_refresh_token and bot.bot_refresh_token.startswith("xoxe-")


async def test_tokens_and_secrets_never_reach_the_logs(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="adapters")
    async with oauth_bot_on(fake, tmp_path, sim, slack_install_allowed_teams=TEAM_A) as world:
        await install(world, TEAM_A, rotating=True, expires_in=600)
        await install(world, TEAM_C)  # refused: its token is given back
        await command(world, "a paper boat", team=TEAM_A, user=ALICE, channel="C0AAA")
        await fake.wait_for(lambda: fake.ok_calls_to("files.completeUploadExternal"))
        await world.runtime.idle()
    issued = [*fake.tokens, *fake.refresh_tokens]
    issued += [c.token for c in fake.calls if c.token]
    assert issued
    for secret in {*issued, CLIENT_SECRET}:
        assert secret not in caplog.text
    assert "installation mode, installed in 0 workspace(s)" in caplog.text
    assert f"installed in workspace {TEAM_A}" in caplog.text


def test_settings_say_what_installation_mode_is_missing() -> None:
    base = {"_env_file": None}
    only_id = Settings(**base, slack_client_id="1.2", slack_signing_secret="s")  # type: ignore[arg-type]
    assert only_id.slack_problem is not None
    assert "SLACK_CLIENT_SECRET is not" in only_id.slack_problem
    assert only_id.slack_problem in only_id.run_problems
    only_secret = Settings(**base, slack_client_secret="x", slack_signing_secret="s")  # type: ignore[arg-type]
    assert only_secret.slack_problem is not None and "SLACK_CLIENT_ID is not" in (
        only_secret.slack_problem
    )
    both = Settings(
        **base,  # type: ignore[arg-type]
        slack_client_id="1.2",
        slack_client_secret="x",
        slack_bot_token="xoxb-1",
        slack_signing_secret="s",
    )
    assert both.slack_problem is not None and "choose one" in both.slack_problem
    no_way_in = Settings(**base, slack_client_id="1.2", slack_client_secret="x")  # type: ignore[arg-type]
    assert no_way_in.slack_problem is not None
    assert "SLACK_SIGNING_SECRET" in no_way_in.slack_problem
    ok = Settings(**base, slack_client_id="1.2", slack_client_secret="x", slack_signing_secret="s")  # type: ignore[arg-type]
    assert ok.slack_installs and ok.slack_mode == "http" and ok.slack_problem is None
    assert "commands" in ok.slack_scopes and ok.slack_team_allowed("T0ANY")
    limited = ok.model_copy(update={"slack_install_allowed_teams": ["T0AAA"]})
    assert limited.slack_team_allowed("T0AAA") and not limited.slack_team_allowed("T0BBB")
    assert "x" not in repr(ok.slack_client_secret)


async def test_check_asks_slack_whether_it_accepts_the_client_credentials(
    fake: FakeSlackOAuth, tmp_path: Path, sim: Simulator
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        evolink_api_key="sk-test-evolink-key",  # type: ignore[arg-type]
        evolink_base_url=sim.base_url,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
        slack_signing_secret="s",  # type: ignore[arg-type]
        slack_api_url=fake.api_url,
    )
    out = io.StringIO()
    await run_checks(settings, out)
    assert "✓ Slack: installation mode, client credentials accepted" in out.getvalue()
    out = io.StringIO()
    wrong = settings.model_copy(update={"slack_client_secret": SecretStr("not-the-secret")})
    assert await run_checks(wrong, out) == 1
    assert "✗ Slack: SLACK_CLIENT_ID / SLACK_CLIENT_SECRET refused (bad_client_secret)" in (
        out.getvalue()
    )
    assert CLIENT_SECRET not in out.getvalue() and "not-the-secret" not in out.getvalue()
