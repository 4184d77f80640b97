"""`sora-bot run` as a real process, with DISCORD_API_BASE pointing at the fake Discord."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from bot.infra.simulator import Simulator
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.adapters.discord.helpers import ALICE, is_upload, sora_options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sora_bot_run_serves_discord_through_the_api_base(
    fake: FakeDiscord, sim: Simulator, tmp_path: Path
) -> None:
    guild_id = next(iter(fake.guilds))
    channel_id = fake.guilds[guild_id]["channels"][0]["id"]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))},
        "DISCORD_TOKEN": FAKE_TOKEN,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GUILD_IDS": guild_id,
        "EVOLINK_API_KEY": "sk-test",
        "EVOLINK_BASE_URL": sim.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "MEDIA_DIR": str(tmp_path / "media"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
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
    try:
        await asyncio.wait_for(fake.identified.wait(), 20)
        await fake.wait_for(lambda r: r.method == "PUT" and "/commands" in r.path)
        await fake.slash(
            "sora",
            sora_options("a paper boat"),
            user=ALICE,
            guild_id=guild_id,
            channel_id=channel_id,
        )
        upload = await fake.wait_for(is_upload, within=20)
        assert upload.files[0].data == sim.clip_of()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    assert proc.returncode == 0, stderr.decode()[-2000:]
    assert FAKE_TOKEN not in stderr.decode()
