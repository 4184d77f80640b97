"""A whole bot as its own process, for the chaos test: it is SIGKILLed and restarted at random.

    python tests/proof/chaos_bot.py --db FILE --media DIR --evolink URL \
        --commands FILE --events FILE

It is wired exactly as `sora-bot run` is (`bot.bootstrap.running_process`: a real SQLite
file, the real EvoLink client against the simulator the test process serves), with a port for
the `chaos` platform instead of a chat platform and no HTTP server, and runs until it is killed.

The chat platform is modelled by two files:
- `--commands`: one JSON object per line, `{"id", "user", "text", "cancel"}` — the commands the
  platform handed to the bot. On every start the bot accepts the commands it has no job for
  yet (a job's surface names its command), one after another, so a kill can land in the
  middle of the intake; commands with `cancel` are cancelled by their requester right after
  being accepted (or at the next start, if the kill came first).
- `--events`: the port appends one JSON line per user-visible outcome (`delivered`, `failed`,
  `cancelled`) and fsyncs it before returning — the line is what the user saw, and it is on
  disk before the core may record the event.

`--kill-after-deliveries N` makes the process SIGKILL itself right after the port has made its
Nth delivery durable and before the core records it: the at-least-once window, hit on purpose.

Replicas (tests/proof/test_replicas.py): `--database-url postgresql://…` instead of `--db`,
`--replica-id`, `--lease-seconds`, `--share I/N` (this replica takes in commands I, I+N, I+2N…,
as a load balancer would hand each chat command to one replica; every replica may follow any
job) and `--max-per-user`/`--max-per-workspace` (the caps the test watches).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.bootstrap import running_process
from bot.domain.errors import BotError
from bot.domain.models import Balance, DeliveredVideo, Job, JobStatus, Requester, Surface
from tests.support import make_settings

PLATFORM = "chaos"
WORKSPACE = "T-CHAOS"


class FileEventPort:
    """A ChatPort whose every outcome is an fsynced JSON line (what the user saw)."""

    platform = PLATFORM
    progress_interval = 0.0
    edits_per_minute: float | None = None

    def __init__(self, path: Path, kill_after_deliveries: int | None) -> None:
        self.path = path
        self.kill_after = kill_after_deliveries
        self.deliveries = 0

    def _append(self, kind: str, job: Job, **extra: Any) -> None:
        line = json.dumps({"kind": kind, "job": job.id, "pid": os.getpid(), **extra}) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    async def on_job_progress(self, job: Job) -> None:
        return None

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        if job.delivery_attempts > 1 and self._already_told(job.id):
            return  # the earlier attempt reached the user before the crash (the port's check)
        assert video.path is not None
        size = os.stat(video.path).st_size  # the file really is there, whole
        self._append("delivered", job, size=size, expected=video.size)
        self.deliveries += 1
        if self.kill_after is not None and self.deliveries >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    def _already_told(self, job_id: str) -> bool:
        if not self.path.exists():
            return False
        for line in self.path.read_text().splitlines():
            event = json.loads(line)
            if event.get("job") == job_id and event.get("kind") == "delivered":
                return True
        return False

    def _already(self, job_id: str, kind: str) -> bool:
        if not self.path.exists():
            return False
        return any(
            (e := json.loads(line)).get("job") == job_id and e.get("kind") == kind
            for line in self.path.read_text().splitlines()
        )

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        if job.tell_attempts > 1 and self._already(job.id, "failed"):
            return
        self._append("failed", job, reason=reason)

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        if job.tell_attempts > 1 and self._already(job.id, "cancelled"):
            return
        self._append("cancelled", job)


def read_commands(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def intake(core: Any, commands: list[dict[str, Any]]) -> None:
    """Accept every command that has no job yet; cancel the ones that ask for it."""
    async with core.store.reading() as tx:
        cur = await tx.execute("SELECT id, status, surface_json FROM jobs")
        rows = await cur.fetchall()
    known = {json.loads(r["surface_json"])["data"]["command"]: r for r in rows}
    for command in commands:
        who = Requester(platform=PLATFORM, workspace=WORKSPACE, user=command["user"])
        row = known.get(command["id"])
        if row is None:
            request = core.service.parse(command["text"])
            surface = Surface(channel="C-CHAOS", data={"command": command["id"]})
            job = await core.service.submit(who, request, surface)
            job_id, status = job.id, job.status
        else:
            job_id, status = row["id"], JobStatus(row["status"])
        if command.get("cancel") and status in (JobStatus.PENDING, JobStatus.SUBMITTED):
            # Refused once the job reached EvoLink (it is rendered and charged): fine too.
            with contextlib.suppress(BotError):
                await core.service.cancel(job_id, who)
        if row is None:
            await asyncio.sleep(0.1)  # commands arrive over time, not in one burst


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("--media", "--evolink", "--commands", "--events"):
        parser.add_argument(name, required=True)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db")
    where.add_argument("--database-url")
    parser.add_argument("--kill-after-deliveries", type=int, default=None)
    parser.add_argument("--replica-id", default=None)
    parser.add_argument("--lease-seconds", type=float, default=None)
    parser.add_argument("--share", default="0/1")
    parser.add_argument("--max-per-user", type=int, default=100)
    parser.add_argument("--max-per-workspace", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    tmp = Path(args.events).parent
    replicas: dict[str, Any] = {}
    if args.replica_id is not None:
        replicas["replica_id"] = args.replica_id
    if args.lease_seconds is not None:
        replicas["lease_seconds"] = args.lease_seconds
    settings = make_settings(
        tmp,
        args.evolink,
        database_url=args.database_url or f"sqlite:///{args.db}",
        media_dir=Path(args.media),
        user_credits_per_period=Decimal(100000),
        max_jobs_per_user=args.max_per_user,
        max_jobs_per_workspace=args.max_per_workspace,
        **replicas,
    )
    mine, of = (int(part) for part in args.share.split("/"))
    commands = read_commands(Path(args.commands))[mine::of]
    port = FileEventPort(Path(args.events), args.kill_after_deliveries)
    async with running_process(settings, ports=[port], serve_http=False) as process:
        print("ready", flush=True)
        await intake(process.core, commands)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
