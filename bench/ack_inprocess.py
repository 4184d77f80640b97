"""The Slack `/sora` acknowledgement itself, with nothing else running: the bot as shipped
against a bare bolt app, in one process, one request at a time and in bursts.

    python bench/ack_inprocess.py [--sequential 100] [--bursts 10] [--burst 17]

Both serve `POST /slack/events` on 127.0.0.1:0 (the bot: real core + SlackRuntime on a SQLite
file against the EvoLink simulator and the fake Slack; the bare app: bench/ack_latency.py's,
bolt's default mode, an ack-only `/sora`). Each bot command is a real job (1 h tasks, so no
delivery runs meanwhile); a pause after each series lets the bot's post-ack work finish.
Latency = POST sent → HTTP response. A burst of 17 is one replica's share of
bench/replicas.py's 50. What it shows: bolt's default mode answers at its next 10 ms look for
the ack; the bot (`process_before_response=True`, adapters/slack/runtime.py) answers when its
listener returns.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import serve_bare_bolt
from bench.slack_ack import one_command, slack_bot
from tests.adapters.slack.fake_slack import FakeSlack
from tests.support import running_simulator


async def timed(http: aiohttp.ClientSession, url: str, fake: FakeSlack, n: int) -> float:
    """One signed `/sora` (bench/slack_ack.py's), in ms."""
    return await one_command(http, url, fake, n) * 1000


async def main(sequential: int, bursts: int, burst: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            FakeSlack() as fake,
            running_simulator(task_seconds=3600, unlimited_credits=True) as sim,
            slack_bot(
                Path(tmp), sim, fake, max_jobs_per_user=100, max_jobs_per_workspace=1000
            ) as rc,
            aiohttp.ClientSession() as http,
        ):
            runner, bare_url = await serve_bare_bolt(fake.api_url)
            urls = {"bot": f"{rc.base_url}/slack/events", "bare": bare_url}
            n = 0
            for url in urls.values():  # warm-up: bolt's first auth.test
                n += 1
                await timed(http, url, fake, n)
            await asyncio.sleep(1.0)
            print(f"{sequential} commands one at a time, then {bursts} bursts of {burst}:")
            for who, url in urls.items():
                one: list[float] = []
                for _ in range(sequential):
                    n += 1
                    one.append(await timed(http, url, fake, n))
                await asyncio.sleep(1.5)
                worst: list[float] = []
                for _ in range(bursts):
                    got = await asyncio.gather(
                        *(timed(http, url, fake, n + i) for i in range(1, burst + 1))
                    )
                    n += burst
                    worst.append(max(got))
                    await asyncio.sleep(1.5)
                one.sort()
                print(
                    f"  {who:<5} one at a time: mean {statistics.fmean(one):6.2f} ms, p50 "
                    f"{one[len(one) // 2]:6.2f} ms; worst per burst: "
                    + " ".join(f"{w:.0f}" for w in worst)
                    + f" ms (mean {statistics.fmean(worst):.1f})"
                )
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=10)
    parser.add_argument("--burst", type=int, default=17)
    args = parser.parse_args()
    asyncio.run(main(args.sequential, args.bursts, args.burst))
