"""`sora-bot run` as a real process at start-up: a platform it cannot use stops it at once with
one clear line and a non-zero exit (no traceback, never "running"), and a good start prints no
third-party warning an operator cannot act on.

"No network" is a DISCORD_API_BASE / SLACK_API_URL on a closed local port; a refused token is
the fake Slack answering `auth.test` with invalid_auth (any token but its own).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.infra.simulator import Simulator
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.adapters.discord.test_discord_run import free_port
from tests.adapters.slack.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack

UNACTIONABLE = ("PyNaCl", "davey", "will be unused", "Traceback")


def bot_env(tmp_path: Path, sim: Simulator, **values: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))},
        "EVOLINK_API_KEY": "sk-test",
        "EVOLINK_BASE_URL": sim.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "MEDIA_DIR": str(tmp_path / "media"),
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "INFO",
        **values,
    }


async def refused_start(tmp_path: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run `sora-bot run` until it exits by itself; (exit code, its stderr lines)."""
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
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("sora-bot run kept running with a platform it cannot use") from None
    assert proc.returncode is not None
    return proc.returncode, stderr.decode().splitlines()


def the_one_problem(lines: list[str]) -> str:
    """The `sora-bot: …` line, after checking nothing else looks like a failure."""
    text = "\n".join(lines)
    assert not any(word in text for word in UNACTIONABLE), text
    assert "running" not in text, text
    problems = [line for line in lines if line.startswith("sora-bot: ")]
    assert len(problems) == 1, text
    return problems[0]


async def test_an_unreachable_discord_is_one_line_and_a_failed_start(
    tmp_path: Path, sim: Simulator
) -> None:
    closed = free_port()  # nothing listens there: connection refused, like no network
    env = bot_env(
        tmp_path,
        sim,
        DISCORD_TOKEN=FAKE_TOKEN,
        DISCORD_API_BASE=f"http://127.0.0.1:{closed}/api/v10",
    )
    code, lines = await refused_start(tmp_path, env)
    assert code != 0
    problem = the_one_problem(lines)
    assert problem.startswith(
        f"sora-bot: Discord could not be reached at http://127.0.0.1:{closed}"
    )
    assert "network" in problem and FAKE_TOKEN not in "\n".join(lines)


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_a_fake_slack_token_is_refused_at_start(
    tmp_path: Path, sim: Simulator, mode: str
) -> None:
    async with FakeSlack() as fake:
        way_in = (
            {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
            if mode == "http"
            else {"SLACK_APP_TOKEN": APP_TOKEN}
        )
        env = bot_env(
            tmp_path,
            sim,
            SLACK_BOT_TOKEN="xoxb-made-up-token",
            SLACK_API_URL=fake.api_url,
            **way_in,
        )
        code, lines = await refused_start(tmp_path, env)
        assert [c.method for c in fake.calls] == ["auth.test"]  # asked once; nothing else
        assert not fake.socket_connected
    assert code != 0
    problem = the_one_problem(lines)
    assert problem.startswith("sora-bot: SLACK_BOT_TOKEN was refused by Slack (invalid_auth)")
    assert "xoxb-made-up-token" not in "\n".join(lines)


async def test_an_unreachable_slack_is_one_line_and_a_failed_start(
    tmp_path: Path, sim: Simulator
) -> None:
    closed = free_port()
    env = bot_env(
        tmp_path,
        sim,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=f"http://127.0.0.1:{closed}/api/",
    )
    code, lines = await refused_start(tmp_path, env)
    assert code != 0
    problem = the_one_problem(lines)
    assert problem.startswith(f"sora-bot: Slack could not be reached at http://127.0.0.1:{closed}")


async def test_a_good_start_prints_no_warning_the_operator_cannot_act_on(
    tmp_path: Path, sim: Simulator
) -> None:
    """Both platforms, tokens accepted: the log says who the bot is and that it runs, and has
    none of discord.py's voice warnings nor bolt's "`token` will be unused"."""
    async with FakeDiscord() as discord_fake, FakeSlack() as slack_fake:
        guild_id, _ = discord_fake.add_guild()
        env = bot_env(
            tmp_path,
            sim,
            DISCORD_TOKEN=FAKE_TOKEN,
            DISCORD_API_BASE=discord_fake.api_base,
            DISCORD_GUILD_IDS=guild_id,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_fake.api_url,
        )
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
        lines: list[str] = []
        try:
            async with asyncio.timeout(30):
                while not any("sora-bot running" in line for line in lines):
                    raw = await proc.stderr.readline()
                    assert raw, "\n".join(lines)  # the process ended before running
                    lines.append(raw.decode().rstrip("\n"))
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                _, rest = await asyncio.wait_for(proc.communicate(), 15)
                lines += rest.decode().splitlines()
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
    text = "\n".join(lines)
    assert proc.returncode == 0, text
    assert "Slack: bot sora in workspace Test Team" in text
    (running,) = [line for line in lines if "sora-bot running: " in line]
    platforms, replica = running.split("sora-bot running: ")[1].split(" — ")
    assert sorted(platforms.split(", ")) == ["discord", "slack"]
    assert replica.startswith("replica ")  # REPLICA_ID: <hostname>-<pid>-<4 hex> by default
    for word in UNACTIONABLE:
        assert word not in text, text
