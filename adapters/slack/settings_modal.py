"""`/sora admin settings`: this workspace's settings in a modal, changed by its admins.

    /sora admin settings    → views.open: one input per setting, prefilled with the value in
                              effect ("(default)" in the label when it is the environment's)
    Save                    → `change_workspace_setting` for each field whose text changed

Invariants:
- Every Web API call here (users.info, views.open, chat.postEphemeral, conversations.open) goes
  through the `client` bolt injects into the listener: it carries the token of the workspace
  the event came from, with one bot token or with OAuth installations alike.
- Who may see or change the settings is the core's rule (`workspace_settings` and
  `change_workspace_setting` raise `PermissionDenied`); this module passes Slack's fact
  `workspace_admin` (users.info) along. A refused person gets the core's words privately
  (the command's response_url), and no modal.
- A field counts as changed only when its text differs from what the modal showed (kept in
  the view's `private_metadata`); an emptied field means `default`, i.e. back to the
  environment's value, and is no change for a setting that was not set for the workspace.
- A bad value is answered in the submission's ack (`response_action: errors`) on that field,
  and nothing is changed: every changed field is checked before any is written
  (`parse_setting`, the domain's reading, pure), and if the core still refuses one
  while writing, the fields already written are put back to what they were.
- The change is confirmed to the admin only (ephemeral in the channel the command came from,
  else a DM), naming each setting and its new value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.actors import SlackActors
from adapters.slack.handlers import requester_of
from adapters.slack.render import esc, short
from bot.domain.errors import BotError, InputError
from bot.domain.models import Requester
from bot.domain.workspace_settings import (
    NO_CHANNEL,
    RESET,
    SETTING_KEYS,
    EffectiveSettings,
    is_reset,
    parse_setting,
    stored_text,
)
from bot.services.interface import BotService

log = logging.getLogger(__name__)

PLATFORM = "slack"
SETTINGS_MODAL = "sora_settings_modal"
VALUE_ACTION = "value"
Spawn = Callable[[Coroutine[Any, Any, None]], None]


def value_text(settings: EffectiveSettings, key: str) -> str:
    """A setting's value as an admin would type it: what the modal prefills and compares
    against ("" for no admin channel from the environment, `none` when the workspace chose
    none)."""
    value = settings.value(key)
    if value is None:
        return NO_CHANNEL if key in settings.overridden else ""
    return stored_text(key, value)


def shown(settings: EffectiveSettings, key: str) -> str:
    """A value in a message: the admin channel as a channel link, others as code."""
    value = settings.value(key)
    if value is None:
        return "none"
    if key == "admin_channel":
        return f"<#{value}>"
    return f"`{esc(stored_text(key, value))}`"


def settings_view(settings: EffectiveSettings, channel: str | None) -> dict[str, Any]:
    """The modal: one optional text input per setting, in SETTING_KEYS' order."""
    shown = {spec.key: value_text(settings, spec.key) for spec in SETTING_KEYS}
    blocks: list[dict[str, Any]] = [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Settings for this workspace. Type `default` (or empty a field) to "
                    "go back to the deployment's value.",
                }
            ],
        }
    ]
    for spec in SETTING_KEYS:
        from_env = spec.key not in settings.overridden
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE_ACTION}
        if shown[spec.key]:
            element["initial_value"] = shown[spec.key]
        blocks.append(
            {
                "type": "input",
                "block_id": spec.key,
                "optional": True,
                "label": {
                    "type": "plain_text",
                    "text": short(spec.label + (" (default)" if from_env else ""), 2000),
                },
                "hint": {"type": "plain_text", "text": short(spec.help, 2000)},
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": SETTINGS_MODAL,
        "title": {"type": "plain_text", "text": "Workspace settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"channel": channel, "shown": shown}),
        "blocks": blocks,
    }


def changed_fields(view: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """({key: text typed} for every field that differs from what was shown, the channel)."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        meta = {}
    shown: dict[str, str] = meta.get("shown") or {}
    values = (view.get("state") or {}).get("values") or {}
    changes: dict[str, str] = {}
    for spec in SETTING_KEYS:
        typed = str(((values.get(spec.key) or {}).get(VALUE_ACTION) or {}).get("value") or "")
        typed = typed.strip()
        before = shown.get(spec.key, "")
        if typed == before:
            continue
        changes[spec.key] = typed or RESET
    channel = meta.get("channel")
    return changes, channel if isinstance(channel, str) and channel else None


def is_settings_command(
    service: BotService,
) -> Callable[[dict[str, Any]], Coroutine[Any, Any, bool]]:
    """A bolt matcher: is this `/sora` the `admin settings` command (by the core's parser)?"""

    async def matches(body: dict[str, Any]) -> bool:
        try:
            command = service.parse_command(str(body.get("text") or ""))
        except InputError:
            return False
        return (
            command.kind == "admin"
            and bool(command.args)
            and command.args[0].casefold() == "settings"
        )

    return matches


class SettingsModal:
    """The listeners: `/sora admin settings` (before the general `/sora`) and the modal."""

    def __init__(self, service: BotService, spawn: Spawn) -> None:
        self.service = service
        self.spawn = spawn

    def register(self, app: AsyncApp) -> None:
        """Call before the general `/sora` listener: bolt runs the first that matches."""
        app.command("/sora", matchers=[is_settings_command(self.service)])(self.on_command)
        app.view(SETTINGS_MODAL)(self.on_submit)

    async def on_command(
        self, ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        try:
            requester = requester_of(body)
        except InputError as err:
            await ack(text=f":warning: {err}")
            return
        await ack()
        channel = body.get("channel_id")
        self.spawn(
            self._open(requester, str(body.get("trigger_id") or ""), channel, client, respond)
        )

    async def _open(
        self,
        requester: Requester,
        trigger_id: str,
        channel: str | None,
        client: AsyncWebClient,
        respond: AsyncRespond,
    ) -> None:
        actor = await SlackActors(client).with_facts(requester)
        try:
            current = await self.service.workspace_settings(actor, PLATFORM, actor.workspace)
        except BotError as err:
            await respond(text=f":warning: {err}", response_type="ephemeral")
            return
        try:
            await client.views_open(trigger_id=trigger_id, view=settings_view(current, channel))
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            log.warning("views.open for the settings modal failed (%s)", error)
            await respond(
                text=":warning: Slack did not open the settings form"
                + (f" ({error})" if error else "")
                + ". Run `/sora admin settings` again.",
                response_type="ephemeral",
            )

    async def on_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        requester = requester_of(body)
        changes, channel = changed_fields(view)
        if not changes:
            await ack()
            self.spawn(self._tell(client, requester, channel, "Nothing changed."))
            return
        actor = await SlackActors(client).with_facts(requester)
        try:
            for key, text in changes.items():
                self._check(key, text)
            after = await self._apply(actor, changes)
        except _FieldError as err:
            await ack(response_action="errors", errors={err.key: short(str(err.error), 300)})
            return
        except BotError as err:  # e.g. no longer an admin: said on the first field changed
            first = next(iter(changes))
            await ack(response_action="errors", errors={first: short(str(err), 300)})
            return
        await ack()
        lines = [
            f"• *{esc(spec.label)}*: {shown(after, spec.key)}"
            + ("" if spec.key in after.overridden else " (default)")
            for spec in SETTING_KEYS
            if spec.key in changes
        ]
        self.spawn(
            self._tell(client, requester, channel, "Workspace settings saved:\n" + "\n".join(lines))
        )

    def _check(self, key: str, text: str) -> None:
        """The core's pure reading of one value, before anything is written."""
        if is_reset(text):
            return
        try:
            parse_setting(key, text, platform=PLATFORM, catalog=self.service.catalog)
        except InputError as err:
            raise _FieldError(key, err) from None

    async def _apply(self, actor: Requester, changes: dict[str, str]) -> EffectiveSettings:
        """Write each change; on a refusal, put back those already written, then raise."""
        before = await self.service.workspace_settings(actor, PLATFORM, actor.workspace)
        written: list[str] = []
        after = before
        for key, text in changes.items():
            try:
                after = await self.service.change_workspace_setting(
                    actor, PLATFORM, actor.workspace, key, text
                )
            except BotError as err:
                await self._put_back(actor, before, written)
                raise _FieldError(key, err) from None
            written.append(key)
        return after

    async def _put_back(self, actor: Requester, before: EffectiveSettings, keys: list[str]) -> None:
        for key in reversed(keys):
            text = value_text(before, key) if key in before.overridden else RESET
            await self.service.change_workspace_setting(actor, PLATFORM, actor.workspace, key, text)

    async def _tell(
        self, client: AsyncWebClient, requester: Requester, channel: str | None, text: str
    ) -> None:
        """Only the admin sees it: ephemeral in `channel`, else a DM."""
        if channel:
            try:
                await client.chat_postEphemeral(channel=channel, user=requester.user, text=text)
                return
            except SlackApiError:
                pass  # not a member there: a DM instead
        opened = await client.conversations_open(users=requester.user)
        await client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)


class _FieldError(Exception):
    def __init__(self, key: str, error: BotError) -> None:
        super().__init__(str(error))
        self.key = key
        self.error = error
