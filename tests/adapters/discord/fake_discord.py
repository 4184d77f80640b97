"""A fake Discord (REST + gateway) on 127.0.0.1:0 that an unmodified discord.py client talks to.

It serves exactly what discord.py 2.7 needs to log in, connect, sync application commands,
answer interactions and post messages, and it records every REST request so tests assert on
what Discord *received* (method, path, JSON body, uploaded files with their bytes).

Invariants:
- Every REST request is appended to `requests` before any knob decides the answer, so a
  request that got a 429 or 5xx is recorded too (tests can count retries).
- Interaction callbacks are accepted once per interaction; a second one gets 400/40060, like
  Discord ("Interaction has already been acknowledged").
- An interaction token marked expired (`expire_token`) answers every webhook route with
  401 / code 50027 "Invalid Webhook Token", like Discord after 15 minutes.
- The gateway sends text frames (no zlib): discord.py accepts them as they are.
- `failures` are one-shot knobs matched on method + path regex, consumed in order.
- Shards as Discord has them: `GET /gateway/bot` recommends `recommended_shards`; an IDENTIFY
  carries `shard: [id, count]` (none: [0, 1]) and is recorded in `identifies`; a session gets
  READY / GUILD_CREATE for, and events of, the guilds with `(guild_id >> 22) % count == id`
  only; DMs go to shard 0. `sessions(shard)` counts the live identified sessions of a shard.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from typing import Any

from aiohttp import WSMsgType, web

from tests.adapters.discord.fake_discord_wire import (
    DISCORD_EPOCH_MS,
    FAKE_TOKEN,
    MIB,
    Failure,
    InteractionRecord,
    RecordedFile,
    RecordedRequest,
    guild_payload,
    interaction_payload,
    json_response,
    message_payload,
    now_iso,
    read_body,
    tier_limit,
    user_payload,
    walk_options,
)

__all__ = ["FAKE_TOKEN", "FakeDiscord", "InteractionRecord", "RecordedFile", "RecordedRequest"]


class FakeDiscord:
    """One fake Discord: an application with a bot user, some guilds with text channels."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.application_id = self.new_id()
        self.bot_user = self.user(self.application_id, "sora-bot", bot=True)
        self.guilds: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.failures: list[Failure] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, list[RecordedFile]] = {}  # message id → files
        self.interactions: dict[str, InteractionRecord] = {}
        self.expired_tokens: set[str] = set()
        self.member_roles: dict[str, list[str]] = {}  # user id → role ids in every guild
        self.dm_channels: dict[str, str] = {}  # user id → DM channel id the bot opened
        self.identified = asyncio.Event()
        self.recommended_shards = 1
        self.identifies: list[tuple[int, int]] = []  # (shard id, shard count) per IDENTIFY
        self.gateway_changed = asyncio.Condition()
        self._shard_of: dict[int, tuple[int, int]] = {}  # id(socket) → its IDENTIFY's shard
        self.request_seen = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=200 * MIB)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- world ---------------------------------------------------------------------------------

    def new_id(self, shard: tuple[int, int] | None = None) -> str:
        """A snowflake for now: discord.py derives `created_at` (and so an interaction's
        `expires_at`) from it, so ids must carry the current time. `shard=(id, count)`: a
        (guild) id that shard carries, a few milliseconds later at most."""
        now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        if shard is not None:
            now_ms += (shard[0] - now_ms) % shard[1]
        return str((now_ms << 22) | (next(self._ids) & 0x3FFFFF))

    user = staticmethod(user_payload)

    def add_guild(
        self, *, premium_tier: int = 0, name: str = "team", shard: tuple[int, int] | None = None
    ) -> tuple[str, str]:
        """A guild with one text channel (on `shard=(id, count)` if given); returns
        (guild_id, channel_id)."""
        guild_id, channel_id = self.new_id(shard), self.new_id()
        self.guilds[guild_id] = guild_payload(
            guild_id, channel_id, self.new_id(), premium_tier=premium_tier, name=name
        )
        return guild_id, channel_id

    def add_role(self, guild_id: str, name: str) -> str:
        """A role in the guild (before the bot connects: GUILD_CREATE carries it)."""
        role_id = self.new_id()
        roles = self.guilds[guild_id]["roles"]
        roles.append(dict(roles[0], id=role_id, name=name, position=len(roles)))
        return role_id

    def add_channel(self, guild_id: str, name: str) -> str:
        """Another text channel in the guild (before the bot connects)."""
        channels = self.guilds[guild_id]["channels"]
        channel_id = self.new_id()
        channels.append(dict(channels[0], id=channel_id, name=name, position=len(channels)))
        return channel_id

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    # -- knobs ---------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        code: int = 0,
        message: str = "error",
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests matching method + path regex with `status`."""
        body: dict[str, Any] = {"message": message, "code": code}
        headers: dict[str, str] = {}
        if status == 429:
            body = {
                "message": "You are being rate limited.",
                "retry_after": retry_after or 0.1,
                "global": False,
            }
            # discord.py treats a 429 without `Via` as a Cloudflare ban and gives up.
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(retry_after or 0.1),
                "X-RateLimit-Scope": "user",
            }
        self.failures.append(Failure(method, re.compile(path), status, body, headers, times))

    def expire_token(self, token: str) -> None:
        self.expired_tokens.add(token)

    # -- gateway -------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                if frame["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None}))
                elif frame["op"] == 2:
                    await self._identify(ws, frame["d"])
        finally:
            self._sockets.remove(ws)
            self._shard_of.pop(id(ws), None)
            async with self.gateway_changed:
                self.gateway_changed.notify_all()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        shard_id, count = (int(x) for x in data.get("shard") or (0, 1))
        self.identifies.append((shard_id, count))
        self._shard_of[id(ws)] = (shard_id, count)
        mine = [g for g in self.guilds if self.shard_of(g, count) == shard_id]
        await self._send(
            ws,
            "READY",
            {
                "v": 10,
                "user": self.bot_user,
                "session_id": self.new_id(),
                "resume_gateway_url": self.gateway_url,
                "guilds": [{"id": g, "unavailable": True} for g in mine],
                "application": {"id": self.application_id, "flags": 0},
                "shard": [shard_id, count],
            },
        )
        for guild_id in mine:
            await self._send(ws, "GUILD_CREATE", self.guilds[guild_id])
        self.identified.set()
        async with self.gateway_changed:
            self.gateway_changed.notify_all()

    @staticmethod
    def shard_of(guild_id: str | None, count: int) -> int:
        """Discord's rule: `(guild_id >> 22) % num_shards`; DMs (no guild) on shard 0."""
        return (int(guild_id) >> 22) % count if guild_id else 0

    def sessions(self, shard_id: int) -> int:
        """Live gateway sessions identified as `shard_id` (whatever their count)."""
        return sum(1 for s, _ in self._shard_of.values() if s == shard_id)

    async def wait_gateway(self, predicate: Any, *, within: float = 10.0) -> None:
        """Until `predicate()` holds, re-checked whenever a session identifies or closes."""

        async def _wait() -> None:
            async with self.gateway_changed:
                await self.gateway_changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), within)

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: str | None = None
    ) -> None:
        """Send the event on the session(s) of the shard that carries its guild (`guild_id`,
        else the data's: GUILD_CREATE / GUILD_DELETE name theirs `id`)."""
        guild_id = guild_id or data.get("guild_id")
        targets = [
            ws
            for ws in list(self._sockets)
            if (shard := self._shard_of.get(id(ws))) is not None
            and self.shard_of(guild_id, shard[1]) == shard[0]
        ]
        if not targets:
            raise RuntimeError(f"no client is connected to the fake gateway for {event}")
        for ws in targets:
            await self._send(ws, event, data)

    # -- interactions --------------------------------------------------------------------------

    def _interaction_base(
        self,
        kind: int,
        guild_id: str | None,
        channel_id: str,
        user: dict[str, Any],
        *,
        admin: bool = False,
        size_limit: int | None = None,
    ) -> dict[str, Any]:
        interaction_id = self.new_id()
        guild = self.guilds.get(guild_id or "")
        limit = (
            size_limit
            if size_limit is not None
            else tier_limit(guild["premium_tier"] if guild else 0)
        )
        payload = interaction_payload(
            kind,
            self.application_id,
            interaction_id,
            guild_id,
            channel_id,
            user,
            admin=admin,
            size_limit=limit,
        )
        if "member" in payload:
            payload["member"]["roles"] = list(self.member_roles.get(user["id"], []))
        self.interactions[interaction_id] = InteractionRecord(
            interaction_id, payload["token"], payload, dispatched_at=0.0
        )
        return payload

    def command_id(self, name: str, guild_id: str | None) -> str:
        for cmd in self.guild_commands.get(guild_id or "", []) + self.global_commands:
            if cmd["name"] == name:
                return str(cmd["id"])
        raise KeyError(f"command {name!r} was never registered")

    async def slash(
        self,
        name: str,
        options: list[dict[str, Any]],
        *,
        user: dict[str, Any],
        guild_id: str | None,
        channel_id: str,
        attachments: list[dict[str, Any]] = (),  # type: ignore[assignment]
        admin: bool = False,
        size_limit: int | None = None,
        autocomplete: bool = False,
    ) -> InteractionRecord:
        """Dispatch INTERACTION_CREATE for a slash command (type 2) or its autocomplete (4)."""
        payload = self._interaction_base(
            4 if autocomplete else 2, guild_id, channel_id, user, admin=admin, size_limit=size_limit
        )
        data: dict[str, Any] = {
            "id": self.command_id(name, guild_id),
            "name": name,
            "type": 1,
            "options": options,
        }
        if guild_id is not None:
            data["guild_id"] = guild_id
        resolved: dict[str, Any] = {}
        if attachments:
            resolved["attachments"] = {a["id"]: a for a in attachments}
        users = {
            o["value"]: self.user(o["value"], f"user{o['value'][-4:]}")
            for o in walk_options(options)
            if o["type"] == 6
        }
        if users:
            resolved["users"] = users
        roles = {
            role["id"]: role
            for role in (self.guilds.get(guild_id or "") or {}).get("roles", [])
            if any(o["type"] == 8 and o["value"] == role["id"] for o in walk_options(options))
        }
        if roles:
            resolved["roles"] = roles
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        return await self._dispatch_interaction(payload)

    async def click(
        self,
        custom_id: str,
        *,
        message_id: str,
        user: dict[str, Any],
        guild_id: str | None,
        channel_id: str,
        admin: bool = False,
    ) -> InteractionRecord:
        """A button press (type 3) on a message the fake knows."""
        payload = self._interaction_base(3, guild_id, channel_id, user, admin=admin)
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        payload["message"] = self.messages[message_id]
        return await self._dispatch_interaction(payload)

    async def submit_modal(
        self,
        custom_id: str,
        values: dict[str, str],
        *,
        user: dict[str, Any],
        guild_id: str | None,
        channel_id: str,
    ) -> InteractionRecord:
        """A modal submit (type 5) with text inputs `values` (custom_id → value)."""
        payload = self._interaction_base(5, guild_id, channel_id, user)
        payload["data"] = {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in values.items()
            ],
        }
        return await self._dispatch_interaction(payload)

    async def _dispatch_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        record = self.interactions[payload["id"]]
        record.dispatched_at = time.perf_counter()
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    def attachment(self, filename: str, size: int, content_type: str) -> dict[str, Any]:
        attachment_id = self.new_id()
        url = f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}"
        return {
            "id": attachment_id,
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    # -- waiting -------------------------------------------------------------------------------

    async def wait_for(self, predicate: Any, *, within: float = 10.0) -> RecordedRequest:
        """The first recorded request (past or future) for which `predicate(req)` is true."""

        async def _wait() -> RecordedRequest:
            async with self.request_seen:
                while True:
                    for req in self.requests:
                        if req.status and predicate(req):
                            return req
                    await self.request_seen.wait()

        return await asyncio.wait_for(_wait(), within)

    def find(self, method: str, pattern: str) -> list[RecordedRequest]:
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method and rx.fullmatch(r.path)]

    # -- REST ----------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await read_body(request)
        rec = RecordedRequest(
            request.method,
            path,
            dict(request.query),
            body,
            files,
            time.perf_counter(),
            auth=request.headers.get("Authorization"),
        )
        self.requests.append(rec)
        response = self._injected(request.method, path) or await self._route(rec)
        rec.status = response.status
        async with self.request_seen:
            self.request_seen.notify_all()
        return response

    def _injected(self, method: str, path: str) -> web.Response | None:
        for failure in self.failures:
            if failure.method == method and failure.path.fullmatch(path):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return json_response(failure.body, failure.status, failure.headers)
        return None

    async def _route(self, rec: RecordedRequest) -> web.Response:
        m, p, app = rec.method, rec.path, self.application_id
        if m == "GET" and p == "/gateway/bot":
            return json_response(
                {
                    "url": self.gateway_url,
                    "shards": self.recommended_shards,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if m == "GET" and p == "/users/@me":
            return json_response(self.bot_user)
        if m == "GET" and p in ("/applications/@me", "/oauth2/applications/@me"):
            return json_response(
                {
                    "id": app,
                    "name": "sora-bot",
                    "description": "",
                    "icon": None,
                    "rpc_origins": [],
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": self.user(self.new_id(), "owner"),
                    "summary": "",
                    "verify_key": "00",
                    "flags": 0,
                    "team": None,
                }
            )
        if match := re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", p):
            return self._commands(m, match.group(1), rec.json)
        if match := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", p):
            return self._callback(match.group(1), match.group(2), rec)
        if match := re.fullmatch(rf"/webhooks/{app}/([^/]+)(?:/messages/([^/]+))?", p):
            return self._webhook(m, match.group(1), match.group(2), rec)
        if m == "POST" and p == "/users/@me/channels":
            return self._open_dm(str((rec.json or {}).get("recipient_id")))
        if match := re.fullmatch(r"/channels/(\d+)/messages(?:/(\d+))?", p):
            return self._channel_message(m, match.group(1), match.group(2), rec)
        return json_response({"message": f"fake has no route {m} {p}", "code": 0}, status=404)

    def _commands(self, method: str, guild_id: str | None, body: Any) -> web.Response:
        if method == "GET":
            return json_response(
                self.guild_commands.get(guild_id, []) if guild_id else self.global_commands
            )
        if method != "PUT":
            return json_response({"message": "method", "code": 0}, status=405)
        stored = []
        for cmd in body:
            cmd = dict(
                cmd,
                id=self.new_id(),
                application_id=self.application_id,
                version="1",
                default_member_permissions=cmd.get("default_member_permissions"),
            )
            if guild_id:
                cmd["guild_id"] = guild_id
            stored.append(cmd)
        if guild_id:
            self.guild_commands[guild_id] = stored
        else:
            self.global_commands = stored
        return json_response(stored)

    def _callback(self, interaction_id: str, token: str, rec: RecordedRequest) -> web.Response:
        record = self.interactions.get(interaction_id)
        if record is None or record.token != token:
            return json_response({"message": "Unknown interaction", "code": 10062}, status=404)
        if record.callback is not None:
            return json_response(
                {"message": "Interaction has already been acknowledged.", "code": 40060}, status=400
            )
        record.callback, record.callback_at = rec.json, rec.at
        kind = rec.json["type"]
        inner = rec.json.get("data") or {}
        result: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": record.payload["type"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(inner.get("flags", 0) & 64),
            }
        }
        if kind in (4, 5):  # a new message (or its loading state) exists now
            msg = self._store_message(record.payload["channel_id"], inner, rec.files, webhook=True)
            record.original_message_id = msg["id"]
            result["interaction"]["response_message_id"] = msg["id"]
            result["resource"] = {"type": kind, "message": msg}
        elif kind == 7:  # update the clicked message
            msg_id = record.payload["message"]["id"]
            msg = self._edit_message(msg_id, inner, rec.files)
            record.original_message_id = msg_id
            result["resource"] = {"type": kind, "message": msg}
        elif kind == 6:  # deferred update: @original is the clicked message
            record.original_message_id = record.payload["message"]["id"]
        return json_response(result)

    def _webhook(
        self,
        method: str,
        token: str,
        message_id: str | None,
        rec: RecordedRequest,
    ) -> web.Response:
        record = next((r for r in self.interactions.values() if r.token == token), None)
        if record is None or token in self.expired_tokens:
            return json_response({"message": "Invalid Webhook Token", "code": 50027}, status=401)
        if message_id == "@original":
            message_id = record.original_message_id
        if method == "POST" and message_id is None:
            if record.callback is None:
                return json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
            msg = self._store_message(
                record.payload["channel_id"], rec.json or {}, rec.files, webhook=True
            )
            return json_response(msg)
        if message_id is None or message_id not in self.messages:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404)
        if method == "PATCH":
            return json_response(self._edit_message(message_id, rec.json or {}, rec.files))
        if method == "GET":
            return json_response(self.messages[message_id])
        if method == "DELETE":
            self.messages.pop(message_id)
            return web.Response(status=204)
        return json_response({"message": "method", "code": 0}, status=405)

    def _channel_message(
        self,
        method: str,
        channel_id: str,
        message_id: str | None,
        rec: RecordedRequest,
    ) -> web.Response:
        if rec.auth != "Bot " + FAKE_TOKEN:
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        if method == "POST" and message_id is None:
            return json_response(self._store_message(channel_id, rec.json or {}, rec.files))
        if method == "GET" and message_id is None:  # history, newest first
            limit = int(rec.query.get("limit", "50"))
            mine = [m for m in self.messages.values() if m["channel_id"] == channel_id]
            return json_response(list(reversed(mine))[:limit])
        if message_id is None or message_id not in self.messages:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404)
        if method == "PATCH":
            return json_response(self._edit_message(message_id, rec.json or {}, rec.files))
        if method == "GET":
            return json_response(self.messages[message_id])
        return json_response({"message": "method", "code": 0}, status=405)

    def _open_dm(self, user_id: str) -> web.Response:
        """POST /users/@me/channels: the bot's DM channel with a user (one per user)."""
        channel_id = self.dm_channels.setdefault(user_id, self.new_id())
        return json_response(
            {
                "id": channel_id,
                "type": 1,
                "last_message_id": None,
                "recipients": [self.user(user_id, f"user{user_id[-4:]}")],
            }
        )

    def _store_message(
        self,
        channel_id: str,
        body: dict[str, Any],
        files: list[RecordedFile],
        *,
        webhook: bool = False,
    ) -> dict[str, Any]:
        message_id = self.new_id()
        msg = message_payload(message_id, channel_id, self.bot_user)
        if webhook:
            msg["webhook_id"] = self.application_id
            msg["application_id"] = self.application_id
        self.messages[message_id] = msg
        return self._edit_message(message_id, body, files, edited=False)

    def _edit_message(
        self,
        message_id: str,
        body: dict[str, Any],
        files: list[RecordedFile],
        *,
        edited: bool = True,
    ) -> dict[str, Any]:
        msg = self.messages[message_id]
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                msg[key] = body[key]
        if files:
            self.uploads.setdefault(message_id, []).extend(files)
            msg["attachments"] = [
                {
                    "id": self.new_id(),
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": f"http://127.0.0.1:{self.port}/cdn/{message_id}/{f.filename}",
                    "proxy_url": "",
                    "content_type": f.content_type,
                }
                for f in files
            ]
        if edited:
            msg["edited_timestamp"] = now_iso()
        return msg
