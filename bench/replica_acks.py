"""Ack latency probe for bench/replicas.py: bare bolt apps and a load generator, each its own
process, and rounds of signed `/sora` bursts to the replicas and to the bare apps.

    async with AckProbe(world, bare=3) as probe:
        bot_ms, bare_ms = await probe.rounds(10, burst=50, pause=1.0, together=False)

The load generator (`python bench/replica_acks.py SLACK_ROOT BARE_URLS BOT_URL…`) reads
`burst N WHO` lines: N commands at once, round-robin over the replicas (WHO = bot), over the bare
apps (bare) or N to each at the same moment (both); it answers `LAT {"bot": […], "bare": […]}`
in ms, POST sent → HTTP response (the ack). Each command to a replica is a real job.
The generator's own collector never runs while a burst is timed (it collects between bursts):
a pause of its own would be counted against whichever side it fell on (§ 6g of RESULTS.md).
Invariant: every child started here is stopped on leaving the block (bench/children.py).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from types import TracebackType

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.children import read_stdin_line, spawn, stop
from bench.replica_world import ROOT, World
from tests.adapters.slack.fake_slack import form_headers, slash_command_body


async def load_generator(slack_root: str, bare_urls: str, *bot_urls: str) -> None:
    bares = bare_urls.split(",")
    sent = 0

    async def one(http: aiohttp.ClientSession, url: str) -> float:
        nonlocal sent
        sent += 1
        body = slash_command_body(
            f"ack clip {sent} --duration 8",
            user=f"UACK{sent % 50}",
            team="TACK",
            channel=f"CACK{sent % 50}",
            trigger_id=f"ack-{sent}",
            response_url=f"{slack_root}/response/ack{sent}",
        )
        start = time.perf_counter()
        async with http.post(url, data=body.encode(), headers=form_headers(body)) as resp:
            await resp.read()
            if resp.status != 200:
                raise SystemExit(f"{url} answered HTTP {resp.status}")
        return (time.perf_counter() - start) * 1000

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for url in bares:  # warm-up: bolt's first auth.test (the replicas are warm already)
            await one(http, url)
        print("READY", flush=True)
        while (line := await read_stdin_line()).startswith("burst"):
            _, count, who = line.split()
            n = int(count)
            gc.collect()  # between bursts, untimed
            gc.disable()
            bot, bare = await asyncio.gather(
                asyncio.gather(
                    *(one(http, bot_urls[i % len(bot_urls)]) for i in range(n * (who != "bare")))
                ),
                asyncio.gather(
                    *(one(http, bares[i % len(bares)]) for i in range(n * (who != "bot")))
                ),
            )
            gc.enable()
            print("LAT " + json.dumps({"bot": bot, "bare": bare}), flush=True)


class AckProbe:
    """`bare` bare bolt apps (bench/ack_latency.py's: /sora only acks) and the load generator,
    aimed at `world.replicas`."""

    def __init__(self, world: World, *, bare: int) -> None:
        self.world = world
        self.bare = bare
        self._children: list[asyncio.subprocess.Process] = []
        self._client: asyncio.subprocess.Process | None = None
        self.in_flight: list[int] = []  # world.sim.running(skip) before each burst

    async def __aenter__(self) -> AckProbe:
        script = str(ROOT / "bench" / "ack_latency.py")
        bares = await asyncio.gather(
            *(spawn(script, "--role", "bare", self.world.slack_api) for _ in range(self.bare))
        )
        self._children = [child for child, _ in bares]
        urls = ",".join(url for _, (url,) in bares)
        replicas = [r.url for r in self.world.replicas]
        self._client, _ = await spawn(__file__, self.world.slack_root, urls, *replicas)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for child in [self._client, *self._children]:
            if child is not None:
                await stop(child)

    async def rounds(
        self, rounds: int, *, burst: int, pause: float, together: bool, skip: set[str]
    ) -> tuple[list[float], list[float]]:
        """`rounds` rounds: a burst to the replicas and one to the bare apps, one after the
        other (which goes first alternates), or both at the same moment (`together`);
        `pause` s after each burst. (replica ms, bare ms)."""
        client = self._client
        assert client is not None and client.stdin is not None and client.stdout is not None
        bot_ms: list[float] = []
        bare_ms: list[float] = []
        for round_no in range(rounds):
            order = ["both"] if together else ["bot", "bare"][:: 1 - 2 * (round_no % 2)]
            for who in order:
                self.in_flight.append(self.world.sim.running(skip))
                client.stdin.write(f"burst {burst} {who}\n".encode())
                await client.stdin.drain()
                line = (await asyncio.wait_for(client.stdout.readline(), 60)).decode()
                got = json.loads(line.removeprefix("LAT "))
                bot_ms += got["bot"]
                bare_ms += got["bare"]
                await asyncio.sleep(pause)
        return bot_ms, bare_ms


if __name__ == "__main__":
    asyncio.run(load_generator(*sys.argv[1:]))
