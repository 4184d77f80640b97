"""Test support: a whole bot on 127.0.0.1 for tests and benchmarks — real SQLite file, the
EvoLink simulator and the web server on port 0, wired by `bot.bootstrap.running_process`
exactly as `sora-bot run` wires it.

    async with running_simulator(task_seconds=0.5) as sim:
        async with running_core(tmp_path, sim, ports=[port]) as rc:   # rc.core, rc.base_url
            ...
        async with running_core(tmp_path, sim) as rc2:     # same DB file: a restart

Invariants: nothing here reads the developer's `.env`; every server binds port 0 and is
closed on exit; `PUBLIC_BASE_URL` is the web server's own address, so callbacks and /media
links work end to end.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import Core, WebServer
from bot.bootstrap import Process, running_process
from bot.domain.models import Balance, DeliveredVideo, Job
from bot.infra.config import Settings
from bot.infra.evolink import EvoLinkClient
from bot.infra.simulator import Simulator, SimulatorConfig
from bot.services.interface import PlatformFactory, PlatformRuntime
from bot.services.port import ChatPort


@dataclass
class RunningCore:
    process: Process
    simulator: Simulator

    @property
    def core(self) -> Core:
        return self.process.core

    @property
    def server(self) -> WebServer:
        assert self.process.web is not None
        return self.process.web

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def platforms(self) -> list[PlatformRuntime]:
        return self.process.platforms


@asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None, **knobs: Any
) -> AsyncIterator[Simulator]:
    async with Simulator.serve(config or SimulatorConfig(**knobs), host="127.0.0.1", port=0) as sim:
        yield sim


def make_settings(tmp_path: Path, evolink_base_url: str, **overrides: Any) -> Settings:
    """Settings for a test bot: its files under `tmp_path`, no `.env`, a fake EvoLink key."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
        "media_dir": tmp_path / "media",
        "evolink_api_key": "sk-test-evolink-key",
        "evolink_base_url": evolink_base_url,
        # No account sampling unless a test asks (it would add GET /v1/credits reads).
        "account_sample_minutes": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_core(
    tmp_path: Path,
    simulator: Simulator,
    *,
    public: bool = True,
    ports: Sequence[ChatPort] = (),
    platforms: Sequence[PlatformFactory] = (),
    evolink: EvoLinkClient | None = None,
    start: bool = True,
    **overrides: Any,
) -> AsyncIterator[RunningCore]:
    """A process against `simulator` (`bot.bootstrap.running_process`): `ports` are test
    ports to register, `platforms` adapter factories; `start=False` resumes no jobs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if public:
        overrides.setdefault("public_base_url", f"http://127.0.0.1:{port}")
    settings = make_settings(tmp_path, simulator.base_url, **overrides)
    try:
        async with running_process(
            settings,
            platforms=platforms,
            ports=ports,
            evolink=evolink,
            sock=sock,
            start_core=start,
        ) as process:
            yield RunningCore(process=process, simulator=simulator)
    finally:
        sock.close()


@dataclass
class PortEvent:
    kind: str  # progress | delivered | failed | cancelled
    job: Job
    video: DeliveredVideo | None = None
    reason: str | None = None
    balance: Balance | None = None


class RecordingPort:
    """A ChatPort that records every event (tests, benchmarks); `fail_deliveries` makes the
    next N deliveries raise, as an unreachable platform would."""

    def __init__(self, platform: str = "test", progress_interval: float = 0.0) -> None:
        self.platform = platform
        self.progress_interval = progress_interval
        self.edits_per_minute: float | None = None
        self.events: list[PortEvent] = []
        self.fail_deliveries = 0
        self._changed = asyncio.Condition()

    async def _record(self, event: PortEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def of(self, job_id: str, kind: str | None = None) -> list[PortEvent]:
        return [e for e in self.events if e.job.id == job_id and (kind is None or e.kind == kind)]

    async def wait_for(self, job_id: str, kind: str, timeout: float = 10.0) -> PortEvent:
        async with asyncio.timeout(timeout), self._changed:
            while True:
                found = self.of(job_id, kind)
                if found:
                    return found[0]
                await self._changed.wait()

    async def on_job_progress(self, job: Job) -> None:
        await self._record(PortEvent("progress", job))

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        if self.fail_deliveries > 0:
            self.fail_deliveries -= 1
            raise ConnectionError("platform unreachable (test)")
        await self._record(PortEvent("delivered", job, video=video, balance=balance))

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        await self._record(PortEvent("failed", job, reason=reason, balance=balance))

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        await self._record(PortEvent("cancelled", job, balance=balance))


def forget_capture(db: sqlite3.Connection, job_id: str) -> None:
    """Undo the recording of a job's capture, as if the process died just before it committed:
    the entry and its effect on the user's and the team's running totals (stopped bot only)."""
    found = db.execute(
        "SELECT period_start, platform, workspace, user_id, amount_uc, settles_uc FROM ledger"
        " WHERE job_id = ? AND kind = 'capture'",
        (job_id,),
    ).fetchone()
    assert found is not None, f"job {job_id} has no capture"
    period, platform, workspace, user, used, held = found
    db.execute("DELETE FROM ledger WHERE job_id = ? AND kind = 'capture'", (job_id,))
    db.execute(
        "UPDATE ledger_totals SET used_uc = used_uc - ?, held_uc = held_uc + ?"
        " WHERE period_start = ? AND platform = ? AND workspace = ? AND user_id IN (?, '')",
        (used, held, period, platform, workspace, user),
    )


async def until(check: Callable[[], bool], within: float) -> None:
    """Wait for `check` (polled every 50 ms: an in-process fact, no event to wait on); fail
    after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        if check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)
