"""Ack latency of Slack's `/sora`: 50 concurrent signed commands while jobs are in flight.

    python bench/slack_ack.py [--concurrency 50] [--rounds 6] [--in-flight 20]

Everything is real and local: the bot (core + bolt AsyncApp in HTTP mode) on 127.0.0.1:0 with a
SQLite file, the EvoLink simulator, and the fake Slack Web API from the tests. Latency is
measured from sending a signed `POST /slack/events` to receiving its HTTP response (the ack);
Slack's limit is 3 s. Each command holds credits and starts a real job, so later rounds run
while earlier jobs are polling, posting progress and uploading.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.slack import SlackRuntime
from bot.app import Core
from bot.infra.simulator import Simulator
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_headers,
    slash_command_body,
)
from tests.support import RunningCore, running_core, running_simulator


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def one_command(http: aiohttp.ClientSession, url: str, fake: FakeSlack, n: int) -> float:
    body = slash_command_body(
        f"bench clip number {n} --duration 8",
        user=f"UBENCH{n % 10}",
        trigger_id=f"trig-{n}",
        response_url=fake.response_url(f"b{n}"),
    )
    headers = form_headers(body)
    start = time.perf_counter()
    async with http.post(url, data=body.encode(), headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"command {n} got HTTP {resp.status}")
    return time.perf_counter() - start


async def wait_settled(core: Core, *, total: int, limit: float) -> int:
    deadline = time.monotonic() + limit
    done = 0
    while time.monotonic() < deadline:
        row = await core.store.fetchone(
            "SELECT COUNT(*) AS n FROM jobs WHERE status IN ('delivered', 'failed', 'cancelled')"
        )
        done = int(row["n"]) if row else 0
        if done >= total:
            break
        await asyncio.sleep(0.2)
    return done


def slack_bot(
    tmp: Path, sim: Simulator, fake: FakeSlack, **overrides: Any
) -> AbstractAsyncContextManager[RunningCore]:
    """The bot with Slack in HTTP mode against `fake`, credits enough for any bench."""
    return running_core(
        tmp,
        sim,
        platforms=[SlackRuntime],
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        user_credits_per_period="1000000",
        **overrides,
    )


async def main(concurrency: int, rounds: int, in_flight: int, task_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeSlack() as fake,
            running_simulator(task_seconds=task_seconds, unlimited_credits=True) as sim,
            slack_bot(Path(tmp), sim, fake) as rc,
            aiohttp.ClientSession() as http,
        ):
            url = f"{rc.base_url}/slack/events"
            counter = 0
            # Warm-up (bolt's first auth.test) and the background load of jobs in flight.
            for _ in range(in_flight):
                counter += 1
                await one_command(http, url, fake, counter)
            await asyncio.sleep(0.5)
            latencies: list[float] = []
            for _ in range(rounds):
                batch = range(counter + 1, counter + concurrency + 1)
                counter += concurrency
                latencies += await asyncio.gather(*(one_command(http, url, fake, n) for n in batch))
                await asyncio.sleep(0.3)
            tasks = len(sim.tasks)
            # Let every job finish (bounded) so the numbers below include their uploads
            # and shutdown does not cut EvoLink callbacks off mid-request.
            settled = await wait_settled(rc.core, total=counter, limit=120.0)
            ms = [x * 1000 for x in latencies]
            print(
                f"ack latency for {len(ms)} signed /sora commands, {concurrency} at a time, "
                f"{in_flight}+ jobs in flight ({tasks} EvoLink tasks created meanwhile):"
            )
            print(
                f"  p50 {percentile(ms, 50):.1f} ms   p95 {percentile(ms, 95):.1f} ms   "
                f"p99 {percentile(ms, 99):.1f} ms   max {max(ms):.1f} ms   "
                f"mean {statistics.fmean(ms):.1f} ms"
            )
            print(
                f"  afterwards: {settled}/{counter} jobs finished, "
                f"{len(fake.shared_files)} MP4s uploaded, {len(fake.calls)} Slack API calls"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.rounds, args.in_flight, args.task_seconds))
