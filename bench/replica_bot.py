"""One replica for bench/replicas.py: a whole bot as its own process, run as `sora-bot run` is.

    python bench/replica_bot.py --database-url postgresql://… --evolink URL --slack-api URL \
        --port N --replica-id ID [--lease-seconds S] [--media DIR] [--gc MODE] [caps…]

It calls `sora_bot.runner.run_bot` itself (the Slack adapter in HTTP mode on 127.0.0.1:`--port`,
`POST /slack/events`, against the fake Slack Web API; the real EvoLink client against the
simulator; one PostgreSQL database shared with the other replicas), so start-up, the GC
settings made there and the stop order are the product's. It ends on SIGTERM (run_bot's own
handler) and then prints one line, `STATS {json}`: what it measured about itself —
- `gc`: every automatic collection's pause (from `gc.callbacks`), per generation: count,
  p50/p99/max ms (run_bot's own `gc.collect()` at start-up is counted apart, not as a pause);
- `lag`: event-loop lag, the overshoot of `asyncio.sleep(0.01)` in a task of its own (p99/max ms);
- `rss_mb` at the end and `hwm_mb` (VmHWM).

`--gc MODE` changes the collector before run_bot starts, for the before/after of issue 12:
  shipped          as the product does it (run_bot's `gc.collect(); gc.freeze()` after start-up)
  nofreeze         run_bot's `gc.freeze()` made a no-op (the state before that change)
  threshold:A,B,C  `gc.set_threshold(A, B, C)` before start-up, plus what run_bot does
  refreeze         after every full collection, `gc.freeze()` its survivors
  defer:MS         not GC: Slack work spawned after an ack starts MS ms later
  eager            not GC: Slack work spawned after an ack starts at once (the spawn before
                   it waited for the other requests being answered: the A/B of that change)
  unfair           not GC: job leases without the fair share (claim every free job, give
                   none back: the leases before that change)
  progress-later   not GC, an experiment: the tracker does not wait for its progress writes
                   (each a write transaction behind the one-writer lock) before its next read
  policy:PATH      not GC: the tracker polls with the policy module at PATH (a copy of
                   bot/domain/polling.py, e.g. the one before a change: A/B in one bench run)
Parts join with "+" (`threshold:50000,20,100+refreeze`). SIGUSR1 writes a census of the
tracked objects by type to stderr (the replica's log), to see what a job costs.
Invariant: no measured figure depends on this process's clock except its own lag and GC pauses.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_bot.runner import run_bot
from tests.adapters.slack.fake_slack import BOT_TOKEN, SIGNING_SECRET
from tests.support import make_settings


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class SelfWatch:
    """GC pauses (all generations) and event-loop lag of this process."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.lags_ms: list[float] = []
        self._started = 0.0
        self.explicit = 0  # collections asked for by gc.collect() (run_bot's, before freeze)
        self._in_explicit = False
        self._collect = gc.collect

    def collect(self, generation: int = 2) -> int:
        """Stands in for `gc.collect`: its pause is counted apart (not a pause the GC chose)."""
        self._in_explicit = True
        try:
            return self._collect(generation)
        finally:
            self._in_explicit = False

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if self._in_explicit:
            self.explicit += phase == "stop"
        elif phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[int(info["generation"])].append((time.perf_counter() - self._started) * 1e3)

    async def lag(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - start - 0.01) * 1000)

    def summary(self) -> dict[str, Any]:
        status = {
            line.split(":")[0]: int(line.split()[1]) / 1024
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith(("VmRSS:", "VmHWM:"))
        }
        return {
            "gc": {
                str(gen): {
                    "n": len(ms),
                    "p50": round(quantile(ms, 0.5), 2),
                    "p99": round(quantile(ms, 0.99), 2),
                    "max": round(max(ms, default=0.0), 2),
                }
                for gen, ms in self.pauses.items()
            },
            "lag": {
                "p99": round(quantile(self.lags_ms, 0.99), 2),
                "max": round(max(self.lags_ms, default=0.0), 2),
            },
            "rss_mb": round(status.get("VmRSS", 0.0), 1),
            "hwm_mb": round(status.get("VmHWM", 0.0), 1),
            "frozen": gc.get_freeze_count(),
            "explicit_collections": self.explicit,
            "threshold": list(gc.get_threshold()),
        }


def apply_gc_mode(mode: str, loop: asyncio.AbstractEventLoop) -> None:
    """`mode`: "+"-joined parts (see the module docstring)."""
    for part in mode.split("+"):
        if part == "shipped":
            continue
        if part == "nofreeze":
            gc.freeze = lambda: None  # run_bot's freeze, undone for the "before" figures
        elif part.startswith("threshold:"):
            first, second, third = (int(x) for x in part.removeprefix("threshold:").split(","))
            gc.set_threshold(first, second, third)
        elif part == "refreeze":
            gc.callbacks.append(functools.partial(_refreeze, loop))
        elif part.startswith("defer:"):
            defer_slack_work(float(part.removeprefix("defer:")) / 1000)
        elif part == "unfair":
            from bot.services import job_leases

            job_leases.fair_share = lambda open_jobs, replicas: 1_000_000_000
        elif part == "progress-later":
            progress_later()
        elif part == "eager":
            eager_slack_work()
        elif part.startswith("policy:"):
            poll_with(part.removeprefix("policy:"))
        else:
            raise SystemExit(f"unknown --gc mode {part!r}")


def _refreeze(loop: asyncio.AbstractEventLoop, phase: str, info: dict[str, Any]) -> None:
    """After each full collection, freeze its survivors (right after, on the loop): the next
    full collection looks only at what was allocated since."""
    if phase == "stop" and info["generation"] == 2 and not loop.is_closed():
        loop.call_soon_threadsafe(gc.freeze)


def defer_slack_work(seconds: float) -> None:
    """Not GC: the work a Slack listener spawns after its ack (admission, Web API calls) starts
    `seconds` later, so the acks of a burst are not queued behind the first commands' work."""
    from adapters.slack.runtime import SlackRuntime

    spawn = SlackRuntime.spawn

    def later(self: SlackRuntime, coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            await asyncio.sleep(seconds)
            await coro

        spawn(self, run())

    SlackRuntime.spawn = later  # type: ignore[method-assign]


def progress_later() -> None:
    """`JobBook.record_progress` returns at once; the write runs in a task of its own."""
    from bot.services.jobs import JobBook

    record = JobBook.record_progress
    pending: set[asyncio.Task[None]] = set()

    async def later(self: JobBook, job_id: str, progress: int) -> None:
        task = asyncio.create_task(record(self, job_id, progress))
        pending.add(task)
        task.add_done_callback(pending.discard)

    JobBook.record_progress = later  # type: ignore[method-assign]


def eager_slack_work() -> None:
    """`SlackRuntime.spawn` as it was before it waited for the requests being answered."""
    from adapters.slack.runtime import SlackRuntime

    def spawn(self: SlackRuntime, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    SlackRuntime.spawn = spawn  # type: ignore[method-assign]


def poll_with(path: str) -> None:
    """The tracker's polling policy replaced by the module at `path` (same names)."""
    import importlib.util

    from bot.services import tracker_steps

    spec = importlib.util.spec_from_file_location("polling_candidate", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no policy module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    for name in ("PollState", "next_delay"):
        setattr(tracker_steps, name, getattr(module, name))


def census(limit: int = 25) -> str:
    """The most numerous object types the collector tracks (frozen ones included)."""
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    frozen = gc.get_freeze_count()
    top = ", ".join(f"{name} {n}" for name, n in counts.most_common(limit))
    return f"CENSUS tracked {sum(counts.values())} + frozen {frozen}: {top}"


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    for name in ("--database-url", "--evolink", "--slack-api", "--replica-id", "--media"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lease-seconds", type=float, default=None)
    parser.add_argument("--max-per-user", type=int, default=100)
    parser.add_argument("--max-per-workspace", type=int, default=1000)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--gc", default="shipped")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    loop = asyncio.get_running_loop()
    apply_gc_mode(args.gc, loop)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(census(), file=sys.stderr, flush=True))
    extra: dict[str, Any] = {"replica_id": args.replica_id}
    if args.lease_seconds is not None:
        extra["lease_seconds"] = args.lease_seconds
    media = Path(args.media)
    settings = make_settings(
        media.parent,
        args.evolink,
        database_url=args.database_url,
        database_pool_size=args.pool_size,
        media_dir=media,
        host="127.0.0.1",
        port=args.port,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=args.slack_api,
        user_credits_per_period=Decimal(100_000_000),
        max_jobs_per_user=args.max_per_user,
        max_jobs_per_workspace=args.max_per_workspace,
        **extra,
    )
    watch = SelfWatch()
    gc.collect = watch.collect
    gc.callbacks.append(watch.on_gc)
    lag = asyncio.create_task(watch.lag())
    try:
        code = await run_bot(settings)
    finally:
        lag.cancel()
        gc.callbacks.remove(watch.on_gc)
        print("STATS " + json.dumps(watch.summary()), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
