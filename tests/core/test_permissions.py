"""The permission rules of `bot.domain.permissions`, as pure functions: no server, no store.

Two Discord guilds (G1, G2) and one Slack workspace (T1). `ops` is an operator admin on
Discord (ADMIN_USER_IDS ``discord:ops``); `boss` manages G1; `carol` is nobody special.
"""

from __future__ import annotations

import pytest

from bot.domain.errors import PermissionDenied
from bot.domain.models import Requester
from bot.domain.permissions import (
    ADMINS_ONLY,
    EVERY_PLATFORM,
    EVERY_WORKSPACE,
    OTHER_PLATFORM,
    OTHER_WORKSPACE,
    Permissions,
    actor_id,
)
from bot.infra.config import Settings

RULES = Permissions({("discord", "ops")})


def who(user: str, workspace: str = "G1", platform: str = "discord", **facts: bool) -> Requester:
    return Requester(platform=platform, workspace=workspace, user=user, **facts)


OPS = who("ops", "G2")  # an operator, standing in G2
BOSS = who("boss", workspace_admin=True)  # Manage Server in G1
CAROL = who("carol")


def refusal(actor: Requester | str, platform: str | None, workspace: str | None) -> str | None:
    try:
        RULES.require_admin(actor, platform, workspace)
    except PermissionDenied as err:
        return str(err)
    return None


def test_an_operator_administers_every_workspace_of_their_platform_only() -> None:
    for workspace in ("G1", "G2", "dm", None):
        assert RULES.administers(OPS, "discord", workspace)
    assert refusal(OPS, "slack", "T1") == OTHER_PLATFORM
    assert refusal(who("ops", "T1", "slack"), "slack", "T1") == ADMINS_ONLY  # ids are per platform
    assert refusal(OPS, None, None) == EVERY_PLATFORM


def test_a_workspace_admin_administers_only_the_workspace_the_event_came_from() -> None:
    assert RULES.require_admin(BOSS, "discord", "G1") == "discord:boss"
    assert refusal(BOSS, "discord", "G2") == OTHER_WORKSPACE
    assert refusal(BOSS, "discord", "dm") == OTHER_WORKSPACE
    assert refusal(BOSS, "discord", None) == EVERY_WORKSPACE
    assert refusal(BOSS, "slack", "G1") == OTHER_PLATFORM
    # The same person acting from G2, where they are not an admin, is nobody there.
    assert refusal(who("boss", "G2"), "discord", "G2") == ADMINS_ONLY


def test_nobody_special_administers_nothing() -> None:
    assert refusal(CAROL, "discord", "G1") == ADMINS_ONLY
    assert refusal(CAROL, "discord", "G2") == ADMINS_ONLY
    assert not RULES.may_administer(CAROL)


def test_operator_ids_are_exact() -> None:
    for impostor in ("OPS", "ops ", "discord:ops"):
        assert not RULES.administers(who(impostor), "discord", "G1")


def test_the_cli_is_trusted_everywhere_and_named_by_its_string() -> None:
    for platform, workspace in (("discord", "G1"), ("slack", None), (None, None)):
        assert RULES.require_admin("cli:root", platform, workspace) == "cli:root"
    assert RULES.may_administer("cli:root")
    assert RULES.require_owner_or_admin("cli:root", CAROL, "cancel") == "cli:root"


def test_may_administer_asks_about_the_actors_own_workspace() -> None:
    assert RULES.may_administer(BOSS) and RULES.may_administer(OPS)
    assert not RULES.may_administer(who("boss", "G2"))


def test_the_owner_or_an_admin_of_the_jobs_workspace_may_cancel() -> None:
    job_in_g2 = who("carol", "G2")
    assert RULES.require_owner_or_admin(job_in_g2, job_in_g2, "cancel") == "discord:carol"
    assert RULES.require_owner_or_admin(OPS, job_in_g2, "cancel") == "discord:ops"
    assert RULES.require_owner_or_admin(who("boss", "G2", workspace_admin=True), job_in_g2, "x")
    with pytest.raises(PermissionDenied, match="an admin of its workspace can cancel it"):
        RULES.require_owner_or_admin(BOSS, job_in_g2, "cancel")  # manages G1, not G2
    with pytest.raises(PermissionDenied, match="or an admin can remix it"):
        RULES.require_owner_or_admin(CAROL, job_in_g2, "remix")  # same user id, other guild
    with pytest.raises(PermissionDenied):
        RULES.require_owner_or_admin(who("carol", "G2", "slack"), job_in_g2, "cancel")


def test_again_is_for_people_of_the_jobs_workspace() -> None:
    RULES.require_same_workspace(who("dave", "G2"), who("carol", "G2"))
    RULES.require_same_workspace("cli:root", who("carol", "G2"))
    with pytest.raises(PermissionDenied, match="another workspace"):
        RULES.require_same_workspace(OPS, who("carol", "G1"))  # even an operator: own jobs only


def test_admin_user_ids_are_parsed_once_into_platform_user_pairs() -> None:
    settings = Settings(_env_file=None, admin_user_ids="discord:1, slack:U0A,slack:U0B")
    assert settings.admin_ids == {("discord", "1"), ("slack", "U0A"), ("slack", "U0B")}
    assert settings.admin_users("slack") == ["U0A", "U0B"]
    assert settings.admin_users("console") == []
    assert Permissions(settings.admin_ids).is_operator(who("U0B", "T9", "slack"))
    assert actor_id(who("U0B", "T9", "slack")) == "slack:U0B"


def test_slack_needs_a_signing_secret_or_an_app_token() -> None:
    off = Settings(_env_file=None)
    assert off.slack_mode is None and off.slack_problem is None
    token = {"_env_file": None, "slack_bot_token": "xoxb-1"}
    stuck = Settings(**token)  # type: ignore[arg-type]
    assert stuck.slack_mode is None
    assert stuck.slack_problem is not None and "SLACK_SIGNING_SECRET" in stuck.slack_problem
    assert Settings(**token, slack_signing_secret="s").slack_mode == "http"  # type: ignore[arg-type]
    socket = Settings(**token, slack_app_token="xapp-1")  # type: ignore[arg-type]
    assert socket.slack_mode == "socket" and socket.slack_problem is None
