"""A fake Slack Web API on 127.0.0.1 (port 0) that records every call, plus signed-request helpers.

Point `AsyncWebClient(base_url=fake.api_url)` (or `SLACK_API_URL`) at it. It implements the
methods the bot uses, with Slack's response shapes: `auth.test`, `chat.postMessage`,
`chat.update`, `chat.getPermalink` (of the messages posted here), `chat.postEphemeral`,
`views.open|update|publish`, `conversations.open`,
`conversations.history` / `conversations.replies` (of the messages posted here),
`files.getUploadURLExternal` + the upload POST + `files.completeUploadExternal`, `files.info`,
`users.info` (admins and owners from `workspace_admins` / `workspace_owners`),
`files.list`, private file downloads (`url_private_download`, bot token required) and
`response_url` posts.

Invariants:
- Every request to `/api/{method}` is recorded in `calls`, in arrival order, with its arguments
  merged from the query string, the form body and the JSON body (slack_sdk uses all three),
  including requests answered with 429 or an error.
- Every API method requires `Authorization: Bearer <bot_token>` (or one of `tokens`, the bot
  tokens of other installed workspaces); anything else gets Slack's
  `{"ok": false, "error": "invalid_auth"}`. Each call records the token it carried (`token`), and
  `auth.test` / `users.info` / views answer for that token's workspace. `OPEN_METHODS` (OAuth,
  tests/adapters/slack/fake_oauth.py) authenticate themselves.
- Every message `chat.postMessage` accepted is kept in `messages` (channel → messages, oldest
  first, as Slack's message objects with `user` and `bot_id`); `chat.update` edits it there.
- Uploaded bytes are stored exactly as received (`uploads[file_id]`); a file counts as shared
  only when `files.completeUploadExternal` succeeded (`shared_files`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0TEAM"
BOT_USER_ID = "UBOT"
BOT_ID = "B0BOT"


@dataclass
class SlackCall:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    status: int = 200
    authorized: bool = True
    #: The bearer token the request carried (None: none).
    token: str | None = None


@dataclass
class SharedFile:
    """A file shared by `files.completeUploadExternal`."""

    file_id: str
    title: str | None
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass
class HostedFile:
    """A Slack-hosted (private) file the bot may download with its token."""

    file_id: str
    name: str
    mimetype: str
    data: bytes
    downloads: int = 0


@dataclass
class FakeSlack:
    """The fake server. Use `async with FakeSlack() as slack:`."""

    bot_token: str = BOT_TOKEN
    team_id: str = TEAM_ID
    bot_user_id: str = BOT_USER_ID
    bot_id: str = BOT_ID
    calls: list[SlackCall] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_names: dict[str, str] = field(default_factory=dict)
    shared_files: list[SharedFile] = field(default_factory=list)
    files: dict[str, HostedFile] = field(default_factory=dict)
    #: `response_url` posts, by the id in the URL.
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Channels where the bot is not a member: chat.postMessage/postEphemeral and
    #: files.completeUploadExternal answer not_in_channel.
    not_in_channels: set[str] = field(default_factory=set)
    #: Messages the bot posted, by channel, oldest first (what conversations.* read back).
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: When set, conversations.history/replies answer {"ok": false, "error": refuse_history}
    #: (e.g. "missing_scope": an install made without the *:history scopes).
    refuse_history: str | None = None
    #: When set, files.completeUploadExternal answers {"ok": false, "error": refuse_uploads}.
    refuse_uploads: str | None = None
    #: Uploads larger than this are refused with file_too_large (None: no limit).
    max_upload_bytes: int | None = None
    #: Socket Mode: envelope id → the payload the app acknowledged it with.
    socket_acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    app_token: str = APP_TOKEN
    #: users.info: who is an admin / owner of the workspace (`is_admin`, `is_owner`), and
    #: users from another workspace (Slack Connect: their `team_id` is theirs).
    workspace_admins: set[str] = field(default_factory=set)
    workspace_owners: set[str] = field(default_factory=set)
    user_teams: dict[str, str] = field(default_factory=dict)
    #: Bot tokens of other workspaces the fake accepts: token → team id.
    tokens: dict[str, str] = field(default_factory=dict)
    _team: str = ""  # the workspace of the call being answered (its token's)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _rate_limited: dict[str, int] = field(default_factory=dict)
    _retry_after: dict[str, int] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _root: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._root = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        """The Web API root, with the trailing slash slack_sdk expects."""
        return f"{self._root}/api/"

    def response_url(self, rid: str = "r1") -> str:
        return f"{self._root}/response/{rid}"

    # -- knobs -----------------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and `Retry-After`."""
        self._rate_limited[method] = times
        self._retry_after[method] = retry_after

    def add_file(self, name: str, data: bytes, mimetype: str) -> dict[str, Any]:
        """Host a private file (as if a user had uploaded it) and return its file object."""
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = HostedFile(file_id, name, mimetype, data)
        return self._file_object(self.files[file_id])

    # -- queries ---------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def ok_calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls_to(method) if c.status == 200 and c.authorized]

    async def wait_for(self, predicate: Callable[[], Any], limit: float = 10.0) -> Any:
        """Wait (at most `limit` s) until `predicate()` is truthy; return its value."""

        async def _loop() -> Any:
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

        return await asyncio.wait_for(_loop(), limit)

    # -- handlers --------------------------------------------------------------------------

    def _touch(self) -> None:
        self._changed.set()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    args.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        # slack_sdk sends some structured arguments JSON-encoded inside form fields.
        for key in ("view", "blocks", "files"):
            if isinstance(args.get(key), str):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        header = request.headers.get("Authorization", "")
        bearer = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        # apps.connections.open (Socket Mode) is the one method called with the app-level token.
        token = self.app_token if method == "apps.connections.open" else self.bot_token
        if method in self.OPEN_METHODS:
            authorized = self._open_auth(header, args)
        else:
            authorized = bearer == token or (bearer in self.tokens and token == self.bot_token)
        self._team = self.tokens.get(bearer or "", self.team_id)
        if self._rate_limited.get(method, 0) > 0:
            self._rate_limited[method] -= 1
            self.calls.append(
                SlackCall(method, args, status=429, authorized=authorized, token=bearer)
            )
            self._touch()
            retry_after = str(self._retry_after.get(method, 1))
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": retry_after},
            )
        self.calls.append(SlackCall(method, args, authorized=authorized, token=bearer))
        self._touch()
        if not authorized:
            error = "bad_client_secret" if method in self.OPEN_METHODS else "invalid_auth"
            return web.json_response({"ok": False, "error": error})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = handler(args)
        return web.json_response(result)

    #: Methods that do not take a bearer token (client credentials instead).
    OPEN_METHODS: ClassVar[frozenset[str]] = frozenset()

    def _open_auth(self, header: str, args: dict[str, Any]) -> bool:
        return False

    def tokens_used(self, method: str) -> list[str | None]:
        """The token each accepted call of `method` carried, in order."""
        return [c.token for c in self.ok_calls_to(method)]

    def _ts(self) -> str:
        n = next(self._ids)
        return f"{1700000000 + n}.{n:06d}"

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://test.slack.com/",
            "team": "Test Team",
            "user": "sora",
            "team_id": self._team,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self._root.replace("http://", "ws://") + "/socket"}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel in self.not_in_channels:
            return {"ok": False, "error": "not_in_channel"}
        ts = self._ts()
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": args.get("text", ""),
            "ts": ts,
            "blocks": args.get("blocks", []),
        }
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages.get(str(args.get("channel", "")), []):
            if message["ts"] == args.get("ts"):
                message["text"] = args.get("text", "")
                message["blocks"] = args.get("blocks", [])
        return {
            "ok": True,
            "channel": args.get("channel"),
            "ts": args.get("ts"),
            "text": args.get("text", ""),
        }

    def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("message_ts", ""))
        if not any(m["ts"] == ts for m in self.messages.get(channel, [])):
            return {"ok": False, "error": "message_not_found"}
        link = f"https://test.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if str(args.get("channel", "")) in self.not_in_channels:
            return {"ok": False, "error": "not_in_channel"}
        return {"ok": True, "message_ts": self._ts()}

    def _view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = dict(args.get("view") or {})
        view.setdefault("id", f"V{next(self._ids):08d}")
        view["team_id"] = self._team
        return {"ok": True, "view": view}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view(args)

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._view(args)

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("user_id"):
            return {"ok": False, "error": "invalid_arguments"}
        return self._view(args)

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args.get("user", ""))
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": self.user_teams.get(user, self._team),
                "name": user.lower(),
                "is_admin": user in self.workspace_admins or user in self.workspace_owners,
                "is_owner": user in self.workspace_owners,
                "is_restricted": False,
                "is_ultra_restricted": False,
            },
        }

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users", ""))
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}

    def _page(self, found: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        """One page of `found` (`limit`, `cursor` = the offset as a string), Slack's shape."""
        if self.refuse_history:
            return {"ok": False, "error": self.refuse_history}
        limit = int(args.get("limit") or 100)
        start = int(args.get("cursor") or 0)
        page = found[start : start + limit]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first."""
        channel = self.messages.get(str(args.get("channel", "")), [])
        top = [m for m in channel if m.get("thread_ts") in (None, m["ts"])]
        return self._page(list(reversed(top)), args)

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread, oldest first: its parent, then its replies."""
        channel = str(args.get("channel", ""))
        ts = str(args.get("ts", ""))
        thread = [m for m in self.messages.get(channel, []) if ts in (m["ts"], m.get("thread_ts"))]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(thread, args)

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self.upload_names[file_id] = str(args.get("filename", ""))
        return {"ok": True, "upload_url": f"{self._root}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.refuse_uploads:
            return {"ok": False, "error": self.refuse_uploads}
        if str(args.get("channel_id", "")) in self.not_in_channels:
            return {"ok": False, "error": "not_in_channel"}
        files = args.get("files") or []
        shared = []
        for item in files:
            file_id = str(item.get("id"))
            if file_id not in self.uploads:
                return {"ok": False, "error": "file_not_found"}
            data = self.uploads[file_id]
            if self.max_upload_bytes is not None and len(data) > self.max_upload_bytes:
                return {"ok": False, "error": "file_too_large"}
            self.shared_files.append(
                SharedFile(
                    file_id,
                    item.get("title"),
                    data,
                    args.get("channel_id"),
                    args.get("thread_ts"),
                    args.get("initial_comment"),
                )
            )
            shared.append({"id": file_id, "title": item.get("title")})
        return {"ok": True, "files": shared}

    def _m_files_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """Files shared in a channel (newest first), as `files:read` lets the bot see them."""
        channel = str(args.get("channel", ""))
        found = [
            {"id": f.file_id, "name": self.upload_names.get(f.file_id, ""), "title": f.title}
            for f in reversed(self.shared_files)
            if not channel or f.channel_id == channel
        ]
        return {"ok": True, "files": found, "paging": {"count": len(found), "total": len(found)}}

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        hosted = self.files.get(str(args.get("file", "")))
        if hosted is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_object(hosted)}

    def _file_object(self, hosted: HostedFile) -> dict[str, Any]:
        url = f"{self._root}/files-pri/{hosted.file_id}/{urllib.parse.quote(hosted.name)}"
        return {
            "id": hosted.file_id,
            "name": hosted.name,
            "title": hosted.name,
            "mimetype": hosted.mimetype,
            "filetype": hosted.name.rsplit(".", 1)[-1],
            "size": len(hosted.data),
            "url_private": url,
            "url_private_download": url + "?download=1",
        }

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        self.calls.append(SlackCall("upload", {"file_id": file_id, "size": len(data)}))
        self.uploads[file_id] = data
        self._touch()
        return web.Response(text=f"OK - {len(data)}")

    async def _download(self, request: web.Request) -> web.StreamResponse:
        hosted = self.files.get(request.match_info["file_id"])
        header = request.headers.get("Authorization", "")
        bearer = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        authorized = bearer == self.bot_token or bearer in self.tokens
        self.calls.append(
            SlackCall(
                "download",
                {"file_id": request.match_info["file_id"]},
                status=200 if authorized else 302,
                authorized=authorized,
                token=bearer,
            )
        )
        self._touch()
        if hosted is None:
            raise web.HTTPNotFound()
        if not authorized:
            # Slack answers an unauthenticated file URL with a login page, not the bytes.
            return web.Response(text="<html>sign in</html>", content_type="text/html")
        hosted.downloads += 1
        return web.Response(body=hosted.data, content_type=hosted.mimetype)

    # -- Socket Mode ----------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def push(self, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope (`slash_commands`, `interactive`, `events_api`) to the app."""
        envelope_id = f"env-{next(self._ids)}"
        ws = next(ws for ws in self._sockets if not ws.closed)
        await ws.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._touch()
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"}}
        )
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                data = json.loads(message.data)
                if "envelope_id" in data:
                    self.socket_acks[data["envelope_id"]] = data.get("payload") or {}
                    self._touch()
        return ws

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        rid = request.match_info["rid"]
        self.responses.setdefault(rid, []).append(body)
        self.calls.append(SlackCall("response_url", {"rid": rid, **body}))
        self._touch()
        return web.Response(text="ok")


# -- signed requests to the bot's /slack/events ---------------------------------------------


def sign(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Slack's v0 signature headers for `body` (HMAC-SHA256 of ``v0:{ts}:{body}``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command_body(
    text: str,
    *,
    user: str = "U0ALICE",
    channel: str = "C0GENERAL",
    team: str = TEAM_ID,
    trigger_id: str = "trig-1",
    response_url: str = "",
    command: str = "/sora",
) -> str:
    """The form-encoded body Slack posts for a slash command."""
    return urllib.parse.urlencode(
        {
            "token": "legacy",
            "team_id": team,
            "team_domain": "test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def payload_body(payload: dict[str, Any]) -> str:
    """Interactivity requests (shortcuts, block_actions, view_submission): form field `payload`."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], *, team: str = TEAM_ID) -> str:
    """An Events API envelope (JSON)."""
    return json.dumps(
        {
            "token": "legacy",
            "team_id": team,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1000)}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def form_headers(body: str, **sign_kwargs: Any) -> dict[str, str]:
    return {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **sign_kwargs)}


def json_headers(body: str, **sign_kwargs: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign(body, **sign_kwargs)}
