"""Shared fixtures: the EvoLink simulator and a running core on 127.0.0.1 port 0, with a real
SQLite file in the test's tmp_path and a RecordingPort for the `test` platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.support import RecordingPort, RunningCore, running_core, running_simulator

ALICE = Requester(platform="test", workspace="W1", user="alice")
BOB = Requester(platform="test", workspace="W1", user="bob")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with running_simulator(task_seconds=0.3) as simulator:
        yield simulator


@pytest.fixture
def port() -> RecordingPort:
    return RecordingPort("test")


@pytest.fixture
def core_settings() -> dict[str, Any]:
    """Override in a test module to change the core's settings."""
    return {}


@pytest.fixture
async def rc(
    tmp_path: Path, sim: Simulator, port: RecordingPort, core_settings: dict[str, Any]
) -> AsyncIterator[RunningCore]:
    async with running_core(tmp_path, sim, ports=[port], **core_settings) as running:
        yield running
