"""The fake Slack with OAuth v2: `oauth.v2.access` (a code → a bot token for its team, and the
refresh grant of token rotation) and `apps.uninstall`, on top of tests/adapters/slack/fake_slack.py.

    slack = FakeSlackOAuth()
    code = slack.grant("T0AAA")                       # what Slack's authorize page would send back
    code = slack.grant("T0BBB", rotating=True)        # + refresh_token and expires_in
    slack.tokens                                      # token → team of every token issued

Invariants:
- `oauth.v2.access` authenticates with the app's client id and secret (HTTP Basic, as slack_sdk
  sends them, or form fields); a code works once; an unknown or used code is `invalid_code`.
- Every issued bot token is accepted by every Web API method and answers for its own team
  (`auth.test` names it); a refreshed token replaces the old one, which stops working.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from tests.adapters.slack.fake_slack import FakeSlack

CLIENT_ID = "1234.5678"
CLIENT_SECRET = "test-client-secret-0123456789"


@dataclass
class Grant:
    team_id: str
    team_name: str
    rotating: bool
    expires_in: int  # of the first token; refreshed ones last Slack's 12 hours


@dataclass
class FakeSlackOAuth(FakeSlack):
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    #: Pending authorization codes (code → what it grants).
    codes: dict[str, Grant] = field(default_factory=dict)
    #: Refresh tokens (refresh token → the grant it renews).
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    #: Workspaces the app was removed from by `apps.uninstall`.
    uninstalled: list[str] = field(default_factory=list)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    OPEN_METHODS = frozenset({"oauth.v2.access"})

    def grant(
        self,
        team_id: str,
        *,
        name: str | None = None,
        rotating: bool = False,
        expires_in: int = 43200,
    ) -> str:
        """A code Slack would redirect the installer of `team_id` back with."""
        code = f"code-{team_id}-{next(self._serial)}"
        self.codes[code] = Grant(team_id, name or f"Team {team_id}", rotating, expires_in)
        return code

    def token_of(self, team_id: str) -> str:
        """The current bot token of `team_id` (the newest issued)."""
        return [t for t, team in self.tokens.items() if team == team_id][-1]

    def _open_auth(self, header: str, args: dict[str, Any]) -> bool:
        if header.startswith("Basic "):
            pair = base64.b64decode(header.removeprefix("Basic ")).decode()
            return pair == f"{self.client_id}:{self.client_secret}"
        return (args.get("client_id"), args.get("client_secret")) == (
            self.client_id,
            self.client_secret,
        )

    def _issue(self, grant: Grant) -> dict[str, Any]:
        n = next(self._serial)
        token = f"xoxb-{grant.team_id}-{n:04d}-fake"
        self.tokens[token] = grant.team_id
        answer: dict[str, Any] = {
            "ok": True,
            "app_id": "A0APP",
            "token_type": "bot",
            "access_token": token,
            "scope": "commands,chat:write,files:write,files:read,im:write,users:read",
            "bot_user_id": self.bot_user_id,
            "team": {"id": grant.team_id, "name": grant.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
            "authed_user": {"id": "U0INSTALLER"},
        }
        if grant.rotating:
            refresh = f"xoxe-1-{grant.team_id}-{n:04d}-refresh"
            self.refresh_tokens[refresh] = grant
            answer |= {"refresh_token": refresh, "expires_in": grant.expires_in}
        return answer

    def _m_oauth_v2_access(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("grant_type") == "refresh_token":
            grant = self.refresh_tokens.pop(str(args.get("refresh_token")), None)
            if grant is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            for token, team in list(self.tokens.items()):
                if team == grant.team_id:
                    del self.tokens[token]  # the old token stops working
            return self._issue(Grant(grant.team_id, grant.team_name, True, 43200))
        grant = self.codes.pop(str(args.get("code")), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        return self._issue(grant)

    def _m_apps_uninstall(self, args: dict[str, Any]) -> dict[str, Any]:
        if (args.get("client_id"), args.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return {"ok": False, "error": "invalid_client_id"}
        team = self._team
        self.uninstalled.append(team)
        for token, owner in list(self.tokens.items()):
            if owner == team:
                del self.tokens[token]
        return {"ok": True}
