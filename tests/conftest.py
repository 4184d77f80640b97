"""Shared fixtures: the EvoLink simulator and a running core on 127.0.0.1 port 0, with a real
SQLite file in the test's tmp_path and a RecordingPort for the `test` platform.

`database_url` runs a test on each engine (ids `sqlite`, `postgresql`): a SQLite file in
tmp_path, or a fresh database on the session's throwaway PostgreSQL server (tests/pg.py).
Without PostgreSQL binaries the `postgresql` cases skip, saying why — except under CI (env
`CI` set), where they fail: CI always runs them. A module runs its core on both engines by
overriding `core_settings` with `{"database_url": database_url}`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import Requester
from bot.infra.simulator import Simulator
from tests.pg import PgServer, find_bindir
from tests.support import RecordingPort, RunningCore, running_core, running_simulator

ALICE = Requester(platform="test", workspace="W1", user="alice")
BOB = Requester(platform="test", workspace="W1", user="bob")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session (started on first use)."""
    if find_bindir() is None:
        reason = "no PostgreSQL binaries (initdb, pg_ctl): apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but there are {reason}")
        pytest.skip(reason)
    server = PgServer.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test (dropped after it)."""
    url = pg_server.fresh_database()
    yield url
    pg_server.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """This test's database, once on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


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
