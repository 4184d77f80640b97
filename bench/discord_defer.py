"""Defer latency of `/sora` under load: 50 concurrent commands through the real discord.py client.

    python bench/discord_defer.py [--commands 50] [--rounds 3]

Measures, per command, the time from the fake Discord gateway sending INTERACTION_CREATE to
the fake receiving the interaction callback (the defer) — what Discord's 3-second deadline
is about. Everything runs in one process on 127.0.0.1: the fake Discord (REST + gateway), the
real core with a real SQLite file, the EvoLink simulator, and the bot's discord.py client.
The commands of a round are dispatched back to back; earlier rounds' jobs are still running.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.discord.runtime import DiscordRuntime
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.support import running_core, running_simulator


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(commands: int, rounds: int) -> None:
    async with FakeDiscord() as fake, running_simulator(task_seconds=5.0) as sim:
        guild_id, channel_id = fake.add_guild()
        with tempfile.TemporaryDirectory() as tmp:
            async with running_core(
                Path(tmp),
                sim,
                discord_token=FAKE_TOKEN,
                discord_api_base=fake.api_base,
                discord_guild_ids=guild_id,
                platforms=[functools.partial(DiscordRuntime, guild_ready_timeout=0.05)],
            ) as rc:
                (runtime,) = rc.platforms
                assert isinstance(runtime, DiscordRuntime)
                await asyncio.wait_for(runtime.ready.wait(), 10)
                all_ms: list[float] = []
                for round_no in range(rounds):
                    records = []
                    for i in range(commands):
                        user = FakeDiscord.user(str(500_000_000_000 + round_no * 1000 + i), f"u{i}")
                        records.append(
                            await fake.slash(
                                "sora",
                                [{"name": "prompt", "type": 3, "value": f"boat {i}"}],
                                user=user,
                                guild_id=guild_id,
                                channel_id=channel_id,
                            )
                        )
                    deadline = time.perf_counter() + 30
                    while any(r.callback_at is None for r in records):
                        if time.perf_counter() > deadline:
                            raise SystemExit("some commands were never deferred")
                        await asyncio.sleep(0.01)
                    ms = [((r.callback_at or 0) - r.dispatched_at) * 1000 for r in records]
                    all_ms += ms
                    print(
                        f"round {round_no + 1}: {commands} commands, defer latency ms "
                        f"p50={percentile(ms, 50):.1f} p95={percentile(ms, 95):.1f} "
                        f"p99={percentile(ms, 99):.1f} max={max(ms):.1f}"
                    )
                jobs = await rc.core.store.fetchall("SELECT count(*) AS n FROM jobs")
                print(
                    f"all {len(all_ms)}: p50={percentile(all_ms, 50):.1f} "
                    f"p95={percentile(all_ms, 95):.1f} p99={percentile(all_ms, 99):.1f} "
                    f"mean={statistics.fmean(all_ms):.1f} ms; jobs stored: {jobs[0]['n']}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.commands, args.rounds))


if __name__ == "__main__":
    main()
