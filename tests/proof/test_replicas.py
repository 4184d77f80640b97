"""Three replicas on one PostgreSQL share 50 jobs while one of them is SIGKILLed again and again.

Each replica is a real process (tests/proof/chaos_bot.py, wired as `sora-bot run` is) with its
own REPLICA_ID and short leases; the chat platform hands each command to one replica (`--share`),
as a load balancer would, and any replica may end up following any job. The EvoLink simulator
runs here, so tasks go on while a replica is dead. A killed replica is started again under a new
id (a new process), so the jobs it held must be taken over by the others when its leases run out.

The promises are those of the one-process chaos test (tests/proof/test_chaos.py,
`check_the_promises`): every command one job, every job one terminal state and one EvoLink task,
every delivery exactly once, captured = what EvoLink billed, no hold left — plus the caps: at no
moment more jobs in flight per user or per workspace than MAX_JOBS_PER_USER / _PER_WORKSPACE.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.pg import run_async
from tests.proof.test_chaos import (
    SEED,
    TERMINAL,
    ChaosWorld,
    check_the_promises,
    kill,
    make_commands,
    stop,
)
from tests.support import running_simulator

REPLICAS = 3
KILLS = 8
LEASE_SECONDS = 2.0
PER_USER = 2
PER_WORKSPACE = 8
IN_FLIGHT = (
    "SELECT user_id, COUNT(*) AS n FROM jobs"
    " WHERE status = 'submitted' OR (status = 'pending' AND queued = 0) GROUP BY user_id"
)


@dataclass
class ReplicaWorld(ChaosWorld):
    url: str = ""
    generation: Counter[int] = field(default_factory=Counter)

    async def spawn_replica(self, slot: int) -> asyncio.subprocess.Process:
        self.generation[slot] += 1
        proc = await self.spawn(
            "--replica-id", f"r{slot}-g{self.generation[slot]}",
            "--lease-seconds", str(LEASE_SECONDS),
            "--share", f"{slot}/{REPLICAS}",
            "--max-per-user", str(PER_USER),
            "--max-per-workspace", str(PER_WORKSPACE),
            store=("--database-url", self.url),
        )  # fmt: skip
        assert proc.stdout is not None
        ready = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert ready.strip() == b"ready", ready
        return proc

    async def fetch(self, sql: str) -> list[Any]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    def rows(self, sql: str) -> list[Any]:  # what check_the_promises reads, from PostgreSQL
        return run_async(self.fetch(sql))


@asynccontextmanager
async def replica_world(tmp_path: Path, url: str) -> AsyncIterator[ReplicaWorld]:
    commands = make_commands(random.Random(SEED))
    async with running_simulator(task_seconds=3.0, seed=SEED) as sim:
        world = ReplicaWorld(tmp_path, sim, url=url)
        world.commands.write_text("".join(json.dumps(c) + "\n" for c in commands))
        yield world


async def watch_caps(world: ReplicaWorld, worst: dict[str, int], done: asyncio.Event) -> None:
    """The most jobs in flight seen per user and for the workspace (every chaos job is in one)."""
    while not done.is_set():
        counts = {str(r["user_id"]): int(r["n"]) for r in await world.fetch(IN_FLIGHT)}
        for user, n in counts.items():
            worst[user] = max(worst.get(user, 0), n)
        worst["<workspace>"] = max(worst.get("<workspace>", 0), sum(counts.values()))
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.05)


async def test_three_replicas_share_fifty_jobs_through_repeated_sigkills(
    tmp_path: Path, pg_url: str
) -> None:
    rng = random.Random(SEED + 1)
    async with replica_world(tmp_path, pg_url) as world:
        procs = {slot: await world.spawn_replica(slot) for slot in range(REPLICAS)}
        worst: dict[str, int] = {}
        done = asyncio.Event()
        watcher = asyncio.create_task(watch_caps(world, worst, done))
        unrecorded_at_death: dict[int, set[str]] = {}
        kills_with_work = 0
        try:
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.5, 2.5))
                slot = rng.randrange(REPLICAS)
                victim = procs[slot]
                await kill(victim)
                now = await world.fetch("SELECT id, status, lease_owner FROM jobs")
                held = [r for r in now if r["lease_owner"] == f"r{slot}-g{world.generation[slot]}"]
                kills_with_work += any(r["status"] not in TERMINAL for r in held)
                recorded = {r["id"] for r in now if r["status"] == "delivered"}
                unrecorded_at_death[victim.pid] = {
                    str(e["job"])
                    for e in world.events_seen()
                    if e["kind"] == "delivered" and e["pid"] == victim.pid
                } - recorded
                procs[slot] = await world.spawn_replica(slot)
            async with asyncio.timeout(120):
                while True:
                    rows = await world.fetch("SELECT status FROM jobs")
                    if len(rows) == 50 and all(r["status"] in TERMINAL for r in rows):
                        break
                    await asyncio.sleep(0.2)
        finally:
            done.set()
            await watcher
            errors = [await stop(proc) for proc in procs.values()]
        for err in errors:
            assert b"Traceback" not in err, err.decode(errors="replace")[-3000:]
        statuses = await asyncio.to_thread(check_the_promises, world, unrecorded_at_death)
    print(f"replicas: final {dict(statuses)}; worst in flight {worst}; kills {KILLS}")
    assert max(v for k, v in worst.items() if k != "<workspace>") <= PER_USER, worst
    assert worst["<workspace>"] <= PER_WORKSPACE, worst
    assert kills_with_work >= KILLS // 2, "the kills hit replicas holding open jobs"
    assert statuses["delivered"] >= 20 and statuses["failed"] >= 5, statuses
