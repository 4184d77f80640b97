"""slack_sdk's async installation and OAuth state stores over the product's store (the host's
`InstallRecords`, bot/services/installs.py): both engines, shared by every replica.

    installs = SealedInstallationStore(records, client_secret, client_id)
    await installs.async_save(installation)       # bolt's OAuth flow, after oauth.v2.access
    await installs.async_find_bot(enterprise_id=None, team_id="T0123")
    states = DatabaseStateStore(records, expiration_seconds=600)

Invariants:
- Tokens are sealed at rest: every token field of slack_sdk's record (bot and user tokens,
  refresh tokens, the incoming-webhook URL) is encrypted with Fernet (AES-128-CBC + HMAC),
  under a key derived (HKDF-SHA256) from SLACK_CLIENT_SECRET; the rest of the record (team,
  scopes, expiry) stays readable for operators. Rotating the client secret makes the sealed
  tokens unreadable: the workspaces then re-install at /slack/install (a record that cannot be
  opened reads as "not installed", it never crashes the bot). Tokens are never logged.
- `async_save` writes the installer's row and the workspace's bot row; a re-install of the same
  team replaces both. `async_delete_all` removes every row of the team, nothing else.
- A state is random (256 bits), stored with its expiry, and accepted once (`consume_state`
  reads and deletes in one transaction); an unknown, used or expired state is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.services.interface import InstallRecords

log = logging.getLogger(__name__)

BOT = "bot"
INSTALLATION = "installation"
SEALED = "sealed:"
#: The fields of slack_sdk's records that are credentials.
SECRET_FIELDS = (
    "bot_token",
    "bot_refresh_token",
    "user_token",
    "user_refresh_token",
    "incoming_webhook_url",
)
_SALT = b"sora-bot slack installations"
_INFO = b"token seal v1"


def seal_key(client_secret: str) -> Fernet:
    """The Fernet key for installation records, derived from the app's client secret."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        client_secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(raw))


class Unreadable(Exception):
    """A sealed record that this client secret cannot open (the secret was rotated)."""


def seal(fernet: Fernet, record: dict[str, Any]) -> str:
    data = dict(record)
    for name in SECRET_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            data[name] = SEALED + fernet.encrypt(value.encode()).decode()
    return json.dumps(data, sort_keys=True)


def unseal(fernet: Fernet, text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    for name in SECRET_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value.startswith(SEALED):
            try:
                data[name] = fernet.decrypt(value.removeprefix(SEALED).encode()).decode()
            except InvalidToken:
                raise Unreadable(name) from None
    return data


def _key(value: str | None) -> str:
    return value or ""


class SealedInstallationStore(AsyncInstallationStore):
    """Installations and bots of every workspace, their tokens sealed."""

    def __init__(self, records: InstallRecords, client_secret: str, client_id: str) -> None:
        self.records = records
        self.client_id = client_id
        self._fernet = seal_key(client_secret)

    @property
    def logger(self) -> logging.Logger:
        return log

    def _team(self, team_id: str | None, is_enterprise_install: bool | None) -> str:
        return "" if is_enterprise_install else _key(team_id)

    def _enterprise(
        self, enterprise_id: str | None, is_enterprise_install: bool | None
    ) -> str | None:
        # Team ids are unique across Slack: the enterprise narrows only an org-wide install.
        return _key(enterprise_id) if is_enterprise_install else None

    async def async_save(self, installation: Installation) -> None:
        team = self._team(installation.team_id, installation.is_enterprise_install)
        enterprise = _key(installation.enterprise_id)
        await self.records.save(
            INSTALLATION,
            enterprise,
            team,
            _key(installation.user_id),
            seal(self._fernet, dict(installation.__dict__)),
        )
        await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        team = self._team(bot.team_id, bot.is_enterprise_install)
        await self.records.save(
            BOT, _key(bot.enterprise_id), team, "", seal(self._fernet, dict(bot.__dict__))
        )

    async def _open(self, text: str | None, what: str, team: str) -> dict[str, Any] | None:
        if text is None:
            return None
        try:
            return unseal(self._fernet, text)
        except Unreadable:
            log.warning(
                "Slack: the %s of workspace %s cannot be opened with this SLACK_CLIENT_SECRET "
                "(was it rotated?); the workspace must install the app again",
                what,
                team or "(org)",
            )
            return None

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        team = self._team(team_id, is_enterprise_install)
        found = await self.records.find(
            BOT, self._enterprise(enterprise_id, is_enterprise_install), team, None
        )
        data = await self._open(found, "bot token", team)
        if data is None or not data.get("bot_token"):
            return None
        return Bot(**data)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        team = self._team(team_id, is_enterprise_install)
        enterprise = self._enterprise(enterprise_id, is_enterprise_install)
        found = await self.records.find(INSTALLATION, enterprise, team, user_id)
        data = await self._open(found, "installation", team)
        if data is None:
            return None
        installation = Installation(**data)
        if user_id is None:
            # The workspace's newest bot token (it may have been rotated since this install).
            bot = await self.async_find_bot(
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )
            if bot is not None:
                installation.bot_token = bot.bot_token
                installation.bot_refresh_token = bot.bot_refresh_token
                installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.records.delete(BOT, None, _key(team_id), None)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        await self.records.delete(INSTALLATION, None, _key(team_id), _key(user_id) or None)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.records.delete(None, None, _key(team_id), None)

    async def installed_teams(self) -> list[str]:
        """Team ids with a bot token (start-up logging, `sora-bot check`)."""
        return await self.records.teams(BOT)


class DatabaseStateStore(AsyncOAuthStateStore):
    """OAuth `state` values: issued by GET /slack/install, consumed once by the redirect."""

    def __init__(self, records: InstallRecords, expiration_seconds: int) -> None:
        self.records = records
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.expiration_seconds)
        await self.records.issue_state(state, expires.isoformat(timespec="milliseconds"))
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        return await self.records.consume_state(state)
