"""slack_sdk's installation and state stores over the product's store, on both engines: tokens
sealed at rest, re-installs replace, deletes touch one workspace, states work once and expire,
and a rotated client secret reads as "not installed"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.installations import DatabaseStateStore, SealedInstallationStore
from bot.infra.store import Store, open_store
from bot.services.installs import Installs

SECRET = "client-secret-one"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await open_store(database_url)
    yield s
    await s.close()


def installation(team: str, token: str, *, user: str = "U0INSTALLER") -> Installation:
    return Installation(
        app_id="A0APP",
        team_id=team,
        team_name=f"Team {team}",
        bot_token=token,
        bot_id="B0BOT",
        bot_user_id="UBOT",
        bot_scopes="commands,chat:write",
        bot_refresh_token=f"xoxe-1-{team}-refresh",
        bot_token_expires_in=43200,
        user_id=user,
        installed_at=time.time(),
    )


async def test_tokens_are_sealed_and_each_team_finds_its_own(store: Store) -> None:
    installs = SealedInstallationStore(Installs(store), SECRET, "1.2")
    await installs.async_save(installation("T0AAA", "xoxb-aaa-111111"))
    await installs.async_save(installation("T0BBB", "xoxb-bbb-222222"))

    raw = [
        r["data_json"] for r in await store.fetchall("SELECT data_json FROM slack_installations")
    ]
    assert len(raw) == 4 and all("xoxb-" not in r and "xoxe-" not in r for r in raw)
    a = await installs.async_find_bot(enterprise_id=None, team_id="T0AAA")
    b = await installs.async_find_bot(enterprise_id=None, team_id="T0BBB")
    assert a is not None and a.bot_token == "xoxb-aaa-111111"
    assert a.bot_refresh_token == "xoxe-1-T0AAA-refresh" and a.bot_token_expires_at is not None
    assert b is not None and b.bot_token == "xoxb-bbb-222222"
    found = await installs.async_find_installation(enterprise_id=None, team_id="T0AAA")
    assert found is not None and found.bot_token == "xoxb-aaa-111111"
    assert found.user_id == "U0INSTALLER"
    assert await installs.installed_teams() == ["T0AAA", "T0BBB"]

    # A re-install replaces the rows; a rotated bot token wins over the install's copy.
    await installs.async_save(installation("T0AAA", "xoxb-aaa-333333"))
    rotated = await installs.async_find_bot(enterprise_id=None, team_id="T0AAA")
    assert rotated is not None and rotated.bot_token == "xoxb-aaa-333333"
    rotated.bot_token = "xoxb-aaa-444444"
    await installs.async_save_bot(rotated)
    found = await installs.async_find_installation(enterprise_id=None, team_id="T0AAA")
    assert found is not None and found.bot_token == "xoxb-aaa-444444"
    assert len(await store.fetchall("SELECT 1 FROM slack_installations")) == 4

    # Deleting one workspace leaves the other.
    await installs.async_delete_all(enterprise_id=None, team_id="T0AAA")
    assert await installs.async_find_bot(enterprise_id=None, team_id="T0AAA") is None
    assert await installs.async_find_installation(enterprise_id=None, team_id="T0AAA") is None
    assert await installs.async_find_bot(enterprise_id=None, team_id="T0BBB") is not None
    await installs.async_delete_bot(enterprise_id=None, team_id="T0BBB")
    assert await installs.async_find_bot(enterprise_id=None, team_id="T0BBB") is None
    assert await installs.async_find_installation(enterprise_id=None, team_id="T0BBB") is not None
    await installs.async_delete_installation(enterprise_id=None, team_id="T0BBB", user_id=None)
    assert await store.fetchall("SELECT 1 FROM slack_installations") == []


async def test_a_new_client_secret_reads_as_not_installed(store: Store) -> None:
    await SealedInstallationStore(Installs(store), SECRET, "1.2").async_save(
        installation("T0AAA", "xoxb-aaa-111111")
    )
    other = SealedInstallationStore(Installs(store), "client-secret-two", "1.2")
    assert await other.async_find_bot(enterprise_id=None, team_id="T0AAA") is None
    assert await other.async_find_installation(enterprise_id=None, team_id="T0AAA") is None


async def test_a_state_works_once_and_not_after_it_expires(store: Store) -> None:
    states = DatabaseStateStore(Installs(store), expiration_seconds=600)
    state = await states.async_issue()
    assert len(state) >= 40
    assert not await states.async_consume("never-issued")
    assert not await states.async_consume("")
    first, second = await asyncio.gather(states.async_consume(state), states.async_consume(state))
    assert sorted([first, second]) == [False, True]  # once, even when raced
    assert not await states.async_consume(state)

    short = DatabaseStateStore(Installs(store), expiration_seconds=0)
    expired = await short.async_issue()
    assert not await short.async_consume(expired)
    assert await store.fetchall("SELECT 1 FROM slack_oauth_states") == []
