"""Chaos: the bot process is SIGKILLed at 20 random (seeded) moments while 50 jobs go through it.

The bot is a real separate process (tests/proof/chaos_bot.py: `running_process` on a real
SQLite file, the real EvoLink client); the EvoLink simulator runs here, in the test process, so
tasks live on while the bot is dead — as EvoLink's do. After the last restart the bot runs until
every job has ended, and then the promises are checked against what the user saw (the port's
fsynced events file), the database and what EvoLink received:

- every command became exactly one job, every job is in exactly one terminal state;
- every delivered job was delivered exactly once, every job has exactly one EvoLink task;
- captured credits = Σ the jobs' charges = what EvoLink billed; no hold is left
  (Σ hold − Σ settles = 0, and each hold is settled exactly once).

`test_a_kill_between_the_post_and_its_record_does_not_deliver_twice` aims a kill at the window
between the platform taking the video and the database recording it, and shows the retry finds
the earlier post instead of posting twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.models import UC_PER_CREDIT
from bot.infra.simulator import Simulator
from tests.prices import LONGEST
from tests.support import running_simulator

ROOT = Path(__file__).resolve().parents[2]
BOT_SCRIPT = Path(__file__).with_name("chaos_bot.py")
SEED = 20261120
JOBS = 50
KILLS = 20
TERMINAL = {"delivered", "failed", "cancelled"}
# A kill between the platform taking the video and the database recording it used to repeat
# the delivery (about a third of runs). The tracker now records each delivery attempt first and
# the port checks the platform on a retry (Job.delivery_attempts), so exactly once is demanded.
ALLOW_THE_DOCUMENTED_WINDOW = False


@dataclass
class ChaosWorld:
    tmp: Path
    sim: Simulator

    @property
    def db(self) -> Path:
        return self.tmp / "chaos.db"

    @property
    def events(self) -> Path:
        return self.tmp / "events.jsonl"

    @property
    def commands(self) -> Path:
        return self.tmp / "commands.jsonl"

    async def spawn(
        self, *extra: str, store: tuple[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        """The chaos bot on this world's files; `store` replaces `--db FILE` (the replicas'
        `--database-url URL`)."""
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for name in list(env):  # the developer's settings must not leak into the child
            if name.startswith(("EVOLINK_", "SLACK_", "DISCORD_", "PUBLIC_BASE_URL", "REPLICA_")):
                del env[name]
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOT_SCRIPT),
            *(store or ("--db", str(self.db))),
            "--media", str(self.tmp / "media"),
            "--evolink", self.sim.base_url,
            "--commands", str(self.commands),
            "--events", str(self.events),
            *extra,
            cwd=self.tmp,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    def rows(self, sql: str) -> list[sqlite3.Row]:
        if not self.db.exists():
            return []
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return list(conn.execute(sql))

    def events_seen(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line]


@asynccontextmanager
async def chaos_world(
    tmp_path: Path, commands: list[dict[str, object]]
) -> AsyncIterator[ChaosWorld]:
    async with running_simulator(task_seconds=3.0, seed=SEED) as sim:
        world = ChaosWorld(tmp_path, sim)
        world.commands.write_text("".join(json.dumps(c) + "\n" for c in commands))
        yield world


async def kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)
    await asyncio.wait_for(proc.wait(), 10)


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    """SIGTERM (a clean stop), then what the bot wrote to stderr."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    except TimeoutError:
        await kill(proc)
        raise
    return err


def make_commands(rng: random.Random) -> list[dict[str, object]]:
    commands: list[dict[str, object]] = []
    for i in range(JOBS):
        text = f"chaos clip {i} of a paper boat"
        if i % 10 == 3:
            text += " [[fail:content_policy_violation]]"  # the simulator fails these halfway
        elif i % 10 == 6:
            text += " [[fail:service_error]]"
        if rng.random() < 0.3:
            text += f" --duration {LONGEST}"  # the default model's longest
        commands.append(
            {"id": f"cmd-{i:02d}", "user": f"u{i % 7}", "text": text, "cancel": i % 10 == 8}
        )
    return commands


async def run_to_the_end(world: ChaosWorld, within: float = 60.0) -> None:
    """Start the bot once more and let it finish every job; then stop it cleanly."""
    proc = await world.spawn()
    try:
        async with asyncio.timeout(within):
            while True:
                rows = world.rows("SELECT status FROM jobs")
                if len(rows) == JOBS and all(r["status"] in TERMINAL for r in rows):
                    break
                await asyncio.sleep(0.2)
    finally:
        err = await stop(proc)
    assert b"Traceback" not in err, err.decode(errors="replace")[-3000:]


def window_duplicates(seen: list[dict[str, Any]], unrecorded_at_death: dict[int, set[str]]) -> int:
    """How many delivered lines are repeats, after checking each one is explained by the
    documented at-least-once window: every delivery of a job but its last was made by a bot
    process that was killed before the database recorded that delivery. Anything else (a
    second delivery by a living process, or after the record) fails the test."""
    by_job: dict[str, list[int]] = {}
    for event in seen:
        if event["kind"] == "delivered":
            by_job.setdefault(str(event["job"]), []).append(int(event["pid"]))
    repeats = 0
    for job_id, pids in by_job.items():
        for pid in pids[:-1]:
            assert job_id in unrecorded_at_death.get(pid, set()), (
                f"job {job_id} delivered again although process {pid}'s delivery was recorded"
                " or that process was not killed"
            )
            repeats += 1
    return repeats


def check_the_promises(world: ChaosWorld, unrecorded_at_death: dict[int, set[str]]) -> Counter[str]:
    jobs = world.rows("SELECT id, status, task_id, reserved_uc, charged_uc, surface_json FROM jobs")
    # Every command is exactly one job, and every job has ended.
    per_command = Counter(json.loads(j["surface_json"])["data"]["command"] for j in jobs)
    assert len(per_command) == JOBS and set(per_command.values()) == {1}
    statuses = Counter(j["status"] for j in jobs)
    assert set(statuses) <= TERMINAL, statuses

    # What the user saw: one line per delivered job, no delivery for a job that did not deliver.
    seen = world.events_seen()
    delivered_lines = Counter(e["job"] for e in seen if e["kind"] == "delivered")
    delivered = {j["id"] for j in jobs if j["status"] == "delivered"}
    repeats = window_duplicates(seen, unrecorded_at_death)
    if not ALLOW_THE_DOCUMENTED_WINDOW:
        assert repeats == 0, f"{repeats} job(s) delivered more than once"
    print(f"chaos: {repeats} repeated delivery(ies), each a kill inside the documented window")
    assert set(delivered_lines) == delivered
    assert all(e["size"] == e["expected"] for e in seen if e["kind"] == "delivered")
    for kind in ("failed", "cancelled"):
        told = Counter(e["job"] for e in seen if e["kind"] == kind)
        ended = {j["id"] for j in jobs if j["status"] == kind}
        assert set(told) <= ended and set(told.values()) <= {1}, (kind, told)
        # A kill right after the commit and before the port call leaves the user untold
        # (see test_a_kill_after_a_failure_is_recorded_leaves_the_user_untold).
        print(f"chaos: {len(ended - set(told))} of {len(ended)} {kind} job(s) never told")

    # EvoLink: one task per job that reached it (the Idempotency-Key is the job id).
    keys = Counter(t.idempotency_key for t in world.sim.tasks.values())
    assert set(keys.values()) <= {1}
    assert {j["task_id"] for j in jobs if j["task_id"]} == set(world.sim.tasks)
    assert delivered <= set(keys)

    # Money: captures = Σ charges = what EvoLink billed; every hold settled exactly once.
    ledger = world.rows("SELECT job_id, kind, amount_uc, settles_uc FROM ledger")
    holds = Counter(r["job_id"] for r in ledger if r["kind"] == "hold")
    settles = Counter(r["job_id"] for r in ledger if r["kind"] in ("capture", "release"))
    assert holds == Counter({j["id"]: 1 for j in jobs}) == settles
    held = sum(r["amount_uc"] for r in ledger if r["kind"] == "hold")
    assert held - sum(r["settles_uc"] or 0 for r in ledger) == 0
    captured = sum(r["amount_uc"] for r in ledger if r["kind"] == "capture")
    # (a failed task is charged what EvoLink kept: normally nothing, a release)
    charges = sum(j["charged_uc"] or 0 for j in jobs if j["status"] in ("delivered", "failed"))
    assert captured == charges
    by_task = {t.id: t for t in world.sim.tasks.values()}
    billed_for_delivered = sum(
        by_task[j["task_id"]].credits_reserved for j in jobs if j["status"] == "delivered"
    )
    assert Decimal(captured) / UC_PER_CREDIT == billed_for_delivered
    # Cancel only what costs nothing: a cancelled job never reached EvoLink (no task, no
    # submit with its key), so everything EvoLink billed is what the ledger captured.
    cancelled = {j["id"] for j in jobs if j["status"] == "cancelled"}
    assert not [j for j in jobs if j["id"] in cancelled and j["task_id"]]
    assert not cancelled & set(keys)
    assert world.sim.used_credits == Decimal(captured) / UC_PER_CREDIT
    assert all(j["charged_uc"] is None for j in jobs if j["status"] == "cancelled")
    return statuses


async def test_fifty_jobs_survive_twenty_sigkills(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    async with chaos_world(tmp_path, make_commands(rng)) as world:
        at_kill: list[tuple[int, int]] = []  # (jobs accepted, jobs still open) at each kill
        unrecorded_at_death: dict[int, set[str]] = {}  # pid → its deliveries not recorded
        for _ in range(KILLS):
            proc = await world.spawn()
            # Python's start-up takes most of a second and varies with load, so the clock
            # starts when the bot says it is ready (resumed its jobs): from then on 0-1.2 s
            # covers resume, intake, submits, polling, downloads and deliveries.
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert ready.strip() == b"ready", ready
            await asyncio.sleep(rng.uniform(0.0, 1.2))
            await kill(proc)
            assert proc.returncode == -signal.SIGKILL
            now = world.rows("SELECT id, status FROM jobs")
            at_kill.append((len(now), sum(r["status"] not in TERMINAL for r in now)))
            recorded = {r["id"] for r in now if r["status"] == "delivered"}
            unrecorded_at_death[proc.pid] = {
                str(e["job"])
                for e in world.events_seen()
                if e["kind"] == "delivered" and e["pid"] == proc.pid
            } - recorded
        await run_to_the_end(world)
        statuses = check_the_promises(world, unrecorded_at_death)
    print(f"chaos: (accepted, open) at each kill: {at_kill}; final: {dict(statuses)}")
    # The kills hit a bot with work in hand, and the mix of endings really happened.
    assert sum(open_ > 0 for _, open_ in at_kill) >= KILLS // 2, at_kill
    assert statuses["delivered"] >= 20 and statuses["failed"] >= 5, statuses
    assert statuses["cancelled"] >= 1, statuses


async def test_a_kill_between_the_post_and_its_record_does_not_deliver_twice(
    tmp_path: Path,
) -> None:
    commands = [{"id": "cmd-00", "user": "u0", "text": "one paper boat", "cancel": False}]
    async with chaos_world(tmp_path, commands) as world:
        proc = await world.spawn("--kill-after-deliveries", "1")
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.returncode == -signal.SIGKILL  # it died inside the window
        proc = await world.spawn()
        try:
            async with asyncio.timeout(30):
                while True:
                    if world.rows("SELECT id FROM jobs WHERE status = 'delivered'"):
                        break
                    await asyncio.sleep(0.1)
        finally:
            await stop(proc)
        lines = [e for e in world.events_seen() if e["kind"] == "delivered"]
        assert len(lines) == 1, f"the user got the video {len(lines)} times"


async def test_a_kill_after_a_failure_is_recorded_still_tells_the_user(tmp_path: Path) -> None:
    from bot.domain.models import Requester, Surface
    from tests.support import RecordingPort, running_core

    who = Requester(platform="test", workspace="W1", user="alice")
    async with running_simulator(task_seconds=0.4, fail_next=["content_policy_violation"]) as sim:
        died = asyncio.Event()
        async with running_core(tmp_path, sim) as rc:  # no port yet: the crash comes first
            book = rc.core.book
            record_failure = book.finish_failed

            async def record_then_die(
                job_id: str, code: str | None, reason: str, kept: Decimal | None = None
            ) -> bool:
                moved = await record_failure(job_id, code, reason, kept)
                died.set()
                await asyncio.Event().wait()  # the process is gone: nothing after the commit
                return moved

            book.finish_failed = record_then_die  # type: ignore[method-assign]
            request = rc.core.service.parse("a paper boat")
            job = await rc.core.service.submit(who, request, Surface(channel="C"))
            await asyncio.wait_for(died.wait(), 10)
        port = RecordingPort("test")
        async with running_core(tmp_path, sim, ports=[port]) as rc:
            assert (await rc.core.service.get_job(job.id)).status == "failed"
            assert (await rc.core.service.balance(who)).held == 0
            await port.wait_for(job.id, "failed", timeout=3)
