"""The Dockerfile, checked without a Docker engine: what it copies exists, what it runs is
this project's console script, its environment is valid configuration, and its HEALTHCHECK
command really tells a serving bot from a dead port."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib
from pathlib import Path

from bot.infra.config import Settings
from bot.infra.simulator import Simulator
from tests.adapters.discord.test_discord_run import free_port
from tests.support import running_core

ROOT = Path(__file__).resolve().parents[2]
LINES = (ROOT / "Dockerfile").read_text().splitlines()


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in LINES if line.startswith(keyword + " ")]


def healthcheck_code() -> str:
    at = next(n for n, line in enumerate(LINES) if line.startswith("HEALTHCHECK "))
    command = json.loads(LINES[at + 1].strip().removeprefix("CMD "))
    assert command[:2] == ["python", "-c"]
    return str(command[2])


def test_copies_run_and_environment_are_real() -> None:
    for source in instructions("COPY"):
        if source.startswith("--from"):
            continue
        *paths, _dest = source.split()
        for path in paths:
            assert (ROOT / path).exists(), path
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert json.loads(instructions("CMD")[-1]) == ["sora-bot", "run"]
    assert "sora-bot" in pyproject["project"]["scripts"]
    assert instructions("FROM")[-1] == "python:3.11-slim"
    assert instructions("USER") == ["sora"]
    assert instructions("EXPOSE") == ["8080"]

    env: dict[str, str] = {}
    for line in LINES:
        if line.startswith("#"):
            continue
        for part in line.strip().removeprefix("ENV ").rstrip("\\").split():
            key, sep, value = part.partition("=")
            if sep and key.isupper():
                env[key] = value
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items() if k != "PATH"})
    assert settings.port == 8080
    assert settings.database_path == "/data/sora-bot.db"
    assert str(settings.media_dir).startswith("/data/")
    assert json.loads(instructions("VOLUME")[0]) == ["/data"]

    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and "*.db" in ignored


async def run_healthcheck(port: int) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        healthcheck_code(),
        env={**os.environ, "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 15)


async def test_healthcheck_passes_on_a_serving_bot_and_fails_on_a_dead_port(
    tmp_path: Path, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim) as rc:
        assert await run_healthcheck(rc.server.port) == 0
    assert await run_healthcheck(free_port()) == 1


def test_the_image_installs_the_locked_versions() -> None:
    """requirements.lock pins every runtime dependency exactly, each pin satisfies
    pyproject's range, and the build installs under it (PIP_CONSTRAINT)."""
    from packaging.requirements import Requirement

    lock = (ROOT / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==", 1) for line in lock if line.strip() and not line.startswith("#"))
    assert all(version.strip() for version in pins.values())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in pyproject["project"]["dependencies"]:
        wanted = Requirement(text)
        name = wanted.name.lower().replace("_", "-").replace(".", "-")
        assert name in pins, f"{wanted.name} is not locked"
        assert wanted.specifier.contains(pins[name]), (text, pins[name])
    assert "setuptools" in pins  # the build backend is pinned too
    builds = [run for run in instructions("RUN") if "pip install" in run]
    assert builds == [
        "python -m venv /opt/venv && PIP_CONSTRAINT=/src/requirements.lock "
        "/opt/venv/bin/pip install ."
    ]
    assert any("requirements.lock" in copy for copy in instructions("COPY"))
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
