"""The world of bench/replicas.py: a PostgreSQL server, the EvoLink simulator with a read log,
the fake Slack Web API, and replica processes (bench/replica_bot.py) started and stopped.

Invariants:
- Every server listens on 127.0.0.1; every replica started here is ended here, by its own pid
  (SIGTERM, then SIGKILL after a bounded wait), and the PostgreSQL server is stopped and removed.
- The read log is taken at the simulator's door (an aiohttp middleware: the simulator package
  itself is unchanged): for every status read answered 200 — `GET /v1/tasks/{id}` or one id
  of a `POST /v1/tasks/batch` — when it arrived, when it was answered (simulator clock, this
  process's `time.monotonic`, the clock task start and end times are in) and the status the
  answer carried. A read that arrived before a replica was killed may be that replica's; one
  that arrived after it was reaped is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from bot.infra.simulator import Simulator
from tests.adapters.slack.fake_slack import form_headers, slash_command_body

ROOT = Path(__file__).resolve().parents[1]
REPLICA_SCRIPT = ROOT / "bench" / "replica_bot.py"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Read:
    arrived: float
    answered: float
    status: str


class LoggedSimulator(Simulator):
    """The simulator, with `reads[task_id]`: every status read of that task (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: dict[str, list[Read]] = {}
        self.app.middlewares.append(self._log_reads)

    @web.middleware
    async def _log_reads(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        arrived = self.clock()
        response = await handler(request)
        if response.status != 200 or not request.path.startswith("/v1/tasks/"):
            return response
        if request.method == "GET":
            ids = [request.match_info.get("task_id", "")]
        else:
            body = json.loads(await request.read() or b"{}")
            ids = list(body.get("task_ids", [])) if isinstance(body, dict) else []
        answered = self.clock()
        for task_id in ids:
            task = self.tasks.get(task_id)
            if task is not None:
                self.reads.setdefault(task_id, []).append(
                    Read(arrived, answered, self.state(task)[0])
                )
        return response

    def status_requests(self) -> int:
        """Status requests received so far (a batch read counts once)."""
        return self.counts["task"] + self.counts["batch"]

    def running(self, skip: set[str] | frozenset[str] = frozenset()) -> int:
        """Tasks pending or processing now, except those in `skip` (an earlier part's)."""
        return sum(
            1
            for task_id, task in self.tasks.items()
            if task_id not in skip and self.state(task)[0] in ("pending", "processing")
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def vm_rss_mb(pid: int) -> float:
    """VmRSS of a process, MB (psutil is not installed here)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Replica:
    slot: int
    replica_id: str
    port: int
    proc: asyncio.subprocess.Process
    log_path: Path
    stats: dict[str, Any] = field(default_factory=dict)
    lease_trouble: list[str] = field(default_factory=list)  # its log's lease warnings/errors

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/healthz"


@dataclass
class World:
    tmp: Path
    sim: LoggedSimulator
    slack_api: str
    http: aiohttp.ClientSession
    slack: Any = None  # the FakeSlack, for its call counts
    database_url: str = ""
    replicas: list[Replica] = field(default_factory=list)
    sent: int = 0

    @property
    def slack_root(self) -> str:
        return self.slack_api.removesuffix("/api/")

    async def start_replicas(
        self, count: int, *, lease_seconds: float | None = None, gc_mode: str = "shipped",
        max_per_user: int = 100, max_per_workspace: int = 1000, tag: str = "r",
    ) -> list[Replica]:  # fmt: skip
        started = await asyncio.gather(
            *(
                self.start_one(
                    slot, f"{tag}{slot}", lease_seconds, gc_mode, max_per_user, max_per_workspace
                )
                for slot in range(count)
            )
        )
        self.replicas = list(started)
        return self.replicas

    async def start_one(
        self, slot: int, replica_id: str, lease: float | None = None, gc_mode: str = "shipped",
        per_user: int = 100, per_ws: int = 1000,
    ) -> Replica:  # fmt: skip
        """Start one replica (`start_replicas` starts them all); it is not in `replicas` yet."""
        port = free_port()
        media = self.tmp / f"{replica_id}-media"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in list(env):
            if name.startswith(("EVOLINK_", "SLACK_", "DISCORD_", "PUBLIC_BASE_URL", "REPLICA_")):
                del env[name]
        args = [
            "--database-url", self.database_url, "--evolink", self.sim.base_url,
            "--slack-api", self.slack_api, "--replica-id", replica_id, "--port", str(port),
            "--media", str(media), "--gc", gc_mode,
            "--max-per-user", str(per_user), "--max-per-workspace", str(per_ws),
        ]  # fmt: skip
        if lease is not None:
            args += ["--lease-seconds", str(lease)]
        log_path = self.tmp / f"{replica_id}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(REPLICA_SCRIPT), *args, cwd=self.tmp, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=log,
            )  # fmt: skip
        replica = Replica(slot, replica_id, port, proc, log_path)
        deadline = time.monotonic() + 60
        while True:
            if proc.returncode is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise SystemExit(f"replica {replica_id} did not start:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError):
                async with self.http.get(replica.health_url) as resp:
                    if resp.status == 200:
                        return replica
            await asyncio.sleep(0.1)

    async def stop_replicas(self) -> None:
        await asyncio.gather(*(self.stop_one(r) for r in self.replicas))

    async def stop_one(self, replica: Replica) -> None:
        proc = replica.proc
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("STATS "):
                replica.stats = json.loads(line.removeprefix("STATS "))
        log = replica.log_path.read_text(errors="replace")
        replica.lease_trouble = [
            line
            for line in log.splitlines()
            if "job lease" in line and line.startswith(("WARNING", "ERROR"))
        ]
        if "Traceback" in log:
            tail = log[log.index("Traceback") :][:1500]
            print(f"  (replica {replica.replica_id} logged a traceback:\n{tail}\n  )")

    async def command(
        self, url: str, *, user: str, team: str, prompt: str = "bench clip", channel: str = ""
    ) -> float:
        """One signed `/sora` to a replica: milliseconds until its HTTP response (the ack)."""
        self.sent += 1
        n = self.sent
        body = slash_command_body(
            f"{prompt} {n} --duration 8",
            user=user,
            team=team,
            channel=channel or f"C{user}",
            trigger_id=f"trig-{n}",
            response_url=f"{self.slack_root}/response/b{n}",
        )
        start = time.perf_counter()
        async with self.http.post(url, data=body.encode(), headers=form_headers(body)) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"command {n} got HTTP {resp.status}")
        return (time.perf_counter() - start) * 1000

    async def fill(self, jobs: int, *, teams: int, users_per_team: int, concurrency: int) -> float:
        """Send `jobs` commands round-robin over the replicas, `concurrency` at a time, from
        `teams` × `users_per_team` users; seconds it took."""
        gate = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        async def one(i: int) -> None:
            async with gate:
                team = f"TLOAD{i % teams}"
                user = f"U{team}X{(i // teams) % users_per_team}"
                url = self.replicas[i % len(self.replicas)].url
                await self.command(url, user=user, team=team, prompt="load")

        await asyncio.gather(*(one(i) for i in range(jobs)))
        return time.perf_counter() - start

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def wait_for(self, check: Callable[[], bool | Awaitable[bool]], limit: float) -> bool:
        """Until `check()` (plain or awaitable) is true, at most `limit` s; whether it became so."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            answer = check()
            if answer if isinstance(answer, bool) else await answer:
                return True
            await asyncio.sleep(0.25)
        return False

    async def spread(self) -> dict[str, Any]:
        """Jobs each live replica follows now (its /healthz `jobs_in_flight`)."""
        spread: dict[str, Any] = {}
        for replica in self.replicas:
            if replica.proc.returncode is None:
                async with self.http.get(replica.health_url) as resp:
                    spread[replica.replica_id] = (await resp.json()).get("jobs_in_flight")
        return spread

    def slack_calls(self) -> dict[str, int]:
        """Fake Slack Web API calls so far, by method (response_url posts included)."""
        counts: dict[str, int] = {}
        for call in self.slack.calls if self.slack is not None else []:
            counts[call.method] = counts.get(call.method, 0) + 1
        return counts

    async def jobs_by_status(self) -> dict[str, int]:
        rows = await self.sql("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
