"""SIGTERM on a real `sora-bot run` (Slack HTTP mode against the fake Slack Web API) while a
signed `/sora` command is in flight: the server stops accepting connections, the command still
gets its 200 acknowledgement, the work it started still happens, the process exits 0 — and
every log line it wrote is one JSON object, free of secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.infra.simulator import Simulator
from tests.adapters.discord.test_discord_run import free_port
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_headers,
    slash_command_body,
)
from tests.prices import DEFAULT_MODEL, LONGEST

EVOLINK_KEY = "sk-ops-shutdown-key"


class LogLines:
    """Reads the child's stderr: every line must be JSON; waits for a message prefix."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.entries: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            text = line.decode()
            async with self._changed:
                self.raw.append(text)
                with contextlib.suppress(ValueError):
                    self.entries.append(json.loads(text))
                self._changed.notify_all()

    async def wait_for(self, prefix: str, timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            while not any(str(e.get("message", "")).startswith(prefix) for e in self.entries):
                await self._changed.wait()


async def connection_refused(port: int, within: float) -> bool:
    async with asyncio.timeout(within):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                return True
            writer.close()
            await asyncio.sleep(0.02)


@dataclass
class GatedSlack(FakeSlack):
    """The bot checks its token with `auth.test` at start; bolt asks `auth.test` again inside
    the first request it handles (single-workspace authorisation, before any listener or ack):
    that second call waits for `gate`, which holds the request in flight inside the bot for as
    long as the test likes. chat.postMessage is slow, so work spawned after the ack is still
    running when shutdown reaches the platforms."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    asked: asyncio.Event = field(default_factory=asyncio.Event)
    post_delay: float = 0.5
    auth_tests: int = 0

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "auth.test":
            self.auth_tests += 1
            if self.auth_tests > 1:  # the first is the start-up check
                self.asked.set()
                await self.gate.wait()
        elif method == "chat.postMessage":
            await asyncio.sleep(self.post_delay)
        return await super()._api(request)


async def test_sigterm_finishes_an_in_flight_slack_acknowledgement(
    tmp_path: Path, sim: Simulator
) -> None:
    async with GatedSlack() as fake, aiohttp.ClientSession() as http:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))},
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "EVOLINK_API_KEY": EVOLINK_KEY,
            "EVOLINK_BASE_URL": sim.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "MEDIA_DIR": str(tmp_path / "media"),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sora_bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        logs = LogLines(proc.stderr)
        try:
            await logs.wait_for("sora-bot running", 20)
            body = slash_command_body(
                f"a paper boat --duration {LONGEST}", response_url=fake.response_url("cmd")
            )

            async def command() -> tuple[int, str]:
                async with http.post(
                    f"http://127.0.0.1:{port}/slack/events",
                    data=body.encode(),
                    headers=form_headers(body),
                    timeout=aiohttp.ClientTimeout(total=20),
                ) as resp:
                    return resp.status, await resp.text()

            in_flight = asyncio.create_task(command())
            await asyncio.wait_for(fake.asked.wait(), 10)  # the bot is mid-request

            proc.send_signal(signal.SIGTERM)
            await logs.wait_for("shutting down", 10)
            assert await connection_refused(port, within=5)  # no new platform events
            assert not in_flight.done()

            fake.gate.set()
            status, text = await asyncio.wait_for(in_flight, 15)
            assert status == 200, text
            assert text.startswith(f":clapper: On it: `{DEFAULT_MODEL}` · {LONGEST} s"), text

            await asyncio.wait_for(proc.wait(), 20)
            await asyncio.wait_for(logs.task, 5)
        finally:
            fake.gate.set()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        output = "".join(logs.raw)
        assert proc.returncode == 0, output[-2000:]

        # The work the acknowledgement promised ran before the process let go: the job and its
        # hold are in the store (the next start resumes it) and its progress message was posted.
        def stored() -> tuple[list[str], int]:
            with contextlib.closing(sqlite3.connect(tmp_path / "bot.db")) as db:
                jobs = db.execute("SELECT prompt FROM jobs").fetchall()
                holds = db.execute("SELECT COUNT(*) FROM ledger WHERE kind = 'hold'").fetchone()
                return [row[0] for row in jobs], int(holds[0])

        prompts, holds = await asyncio.to_thread(stored)
        assert prompts == ["a paper boat"]
        assert holds == 1
        assert any("a paper boat" in json.dumps(c.args) for c in fake.calls_to("chat.postMessage"))

        assert len(logs.entries) == len(logs.raw), "every log line is one JSON object"
        messages = [e["message"] for e in logs.entries]
        assert messages[-1] == "stopped"
        for secret in (BOT_TOKEN, SIGNING_SECRET, EVOLINK_KEY):
            assert secret not in output
