"""Acknowledgement latency under load: Slack `/sora` and Discord `/sora` vs a bare bolt app.

    python bench/ack_latency.py [--in-flight 200] [--burst 50] [--rounds 10] [--task-seconds 30]

Four processes on 127.0.0.1, so no process's work delays another's clock:
  bot     the real core (SQLite file) with both adapters: bolt AsyncApp behind aiohttp for
          Slack (POST /slack/events), the discord.py client on the fake Discord gateway;
  bare    a minimal bolt AsyncApp with the same signing secret on the same kind of aiohttp
          server, whose /sora only calls ack();
  world   the EvoLink simulator, the fake Slack Web API (tests/adapters/slack) and the load:
          `--in-flight` jobs kept in flight as signed Slack commands from 20 users (they poll,
          post progress, download and upload to the fake Slack throughout);
  client  (this process) sends the measured commands and runs the fake Discord
          (tests/adapters/discord), which timestamps both ends of each interaction.
Per round: `--burst` Slack commands to the bot and `--burst` to the bare app at once
(interleaved: same moment, same load, same client), then `--burst` Slack + `--burst` Discord
commands to the bot at once. Slack latency = signed POST sent → HTTP response (the ack);
Discord latency = INTERACTION_CREATE sent by the gateway → interaction callback (the defer)
received.
Targets: p99 ≤ 150 ms; the bot's Slack p99 within 1.5× of the bare app's.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.discord.runtime import DiscordRuntime
from adapters.slack import SlackRuntime
from adapters.slack.runtime import web_client
from bench.children import read_stdin_line, spawn, stop, wait_for_stdin_eof
from bot.infra.simulator import Simulator
from tests.adapters.discord.fake_discord import FAKE_TOKEN, FakeDiscord
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_headers,
    slash_command_body,
)
from tests.support import running_core, running_simulator


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


async def slack_command(
    http: aiohttp.ClientSession,
    url: str,
    slack_root: str,
    n: int,
    prompt: str = "bench clip number",
    user: str = "",
) -> float:
    body = slash_command_body(
        f"{prompt} {n} --duration 8",
        user=user or f"UBENCH{n % 50}",
        trigger_id=f"trig-{n}",
        response_url=f"{slack_root}/response/b{n}",
    )
    headers = form_headers(body)
    start = time.perf_counter()
    async with http.post(url, data=body.encode(), headers=headers) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"command {n} got HTTP {resp.status}")
    return (time.perf_counter() - start) * 1000


async def discord_burst(
    fake: FakeDiscord, guild: str, channel: str, burst: int, base: int
) -> list[float]:
    records = []
    for i in range(burst):
        user = FakeDiscord.user(str(500_000_000_000 + base + i), f"u{i}")
        records.append(
            await fake.slash(
                "sora",
                [{"name": "prompt", "type": 3, "value": f"boat {base + i}"}],
                user=user,
                guild_id=guild,
                channel_id=channel,
            )
        )
    deadline = time.perf_counter() + 30
    while any(r.callback_at is None for r in records):
        if time.perf_counter() > deadline:
            raise SystemExit("some Discord commands were never deferred")
        await asyncio.sleep(0.005)
    return [((r.callback_at or 0.0) - r.dispatched_at) * 1000 for r in records]


async def serve_bare_bolt(slack_api_url: str) -> tuple[web.AppRunner, str]:
    """A bolt AsyncApp whose /sora only acks, on its own aiohttp server."""
    bare = AsyncApp(
        client=web_client(BOT_TOKEN, slack_api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
    )

    @bare.command("/sora")
    async def only_ack(ack: Any) -> None:
        await ack()

    async def handle(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bare.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/slack/events"


@dataclass
class Remote:
    """Where the bot process finds its counterparts (all in the parent process)."""

    base_url: str  # the EvoLink simulator; duck-types `Simulator.base_url` for running_core


async def serve_bot(
    evolink: str, slack_api: str, discord_api: str, guild: str, slack_session: str
) -> None:
    """Child process: the real bot (core, Slack over HTTP, Discord over the gateway).
    slack_session "shared": give the bot's AsyncWebClient one aiohttp session (the proposed
    fix; as shipped, slack_sdk opens a new session and connection for every API call)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with running_core(
            Path(tmp),
            cast(Simulator, Remote(evolink)),
            platforms=[SlackRuntime, functools.partial(DiscordRuntime, guild_ready_timeout=0.05)],
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack_api,
            discord_token=FAKE_TOKEN,
            discord_api_base=discord_api,
            discord_guild_ids=guild,
            user_credits_per_period="100000000",
            max_jobs_per_user=100,
            max_jobs_per_workspace=1000,
        ) as rc:
            slack, discord = rc.platforms
            assert isinstance(slack, SlackRuntime) and isinstance(discord, DiscordRuntime)
            shared = aiohttp.ClientSession() if "shared" in slack_session else None
            if shared is not None:
                slack.client.session = shared
            if "defer" in slack_session:
                defer_work_after_ack(slack)
            watch = BotWatch()
            try:
                await asyncio.wait_for(discord.ready.wait(), 10)
                if "freeze" in slack_session:
                    gc.collect()
                    gc.freeze()  # startup objects (libraries, caches) leave the GC's view
                watch.start()
                print(f"READY {rc.base_url}/slack/events", flush=True)
                await wait_for_stdin_eof()
                watch.stop()
                print(watch.summary(), flush=True)
            finally:
                if shared is not None:
                    await shared.close()


class BotWatch:
    """In the bot process: event-loop lag (sleep(0.01) overshoot) and full GC pauses, to tell
    where an ack's tail latency comes from."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.gc_ms: list[float] = []
        self._gc_start = 0.0
        self._task: asyncio.Task[None] | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_ms.append((time.perf_counter() - self._gc_start) * 1000)

    async def _lag(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - start - 0.01) * 1000)

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._lag())

    def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()

    def summary(self) -> str:
        lags = self.lags_ms or [0.0]
        return (
            f"BOT {percentile(lags, 99):.1f} {max(lags):.1f} {len(self.gc_ms)} "
            f"{max(self.gc_ms or [0.0]):.1f}"
        )


def defer_work_after_ack(runtime: SlackRuntime) -> None:
    """Experiment (`--slack-session …+defer`): start the work a command spawns after its ack
    only once the burst's other acks had their turn (a 20 ms sleep first)."""
    spawn = runtime.handlers.spawn

    def later(coro: Coroutine[Any, Any, None]) -> None:
        async def run() -> None:
            await asyncio.sleep(0.02)
            await coro

        spawn(run())

    runtime.handlers.spawn = later


async def serve_bare(slack_api: str) -> None:
    runner, url = await serve_bare_bolt(slack_api)
    try:
        print(f"READY {url}", flush=True)
        await wait_for_stdin_eof()
    finally:
        await runner.cleanup()


def row(name: str, ms: list[float]) -> str:
    return (
        f"{name:<22} {len(ms):>5} {percentile(ms, 50):>8.1f} {percentile(ms, 95):>8.1f} "
        f"{percentile(ms, 99):>8.1f} {max(ms):>8.1f} {statistics.fmean(ms):>8.1f}"
    )


class LoadKeeper:
    """Keeps `target` load jobs in flight on EvoLink (sent as Slack commands from 20 users):
    tops up whenever some finish."""

    def __init__(
        self, sim: Simulator, http: aiohttp.ClientSession, url: str, root: str, target: int
    ) -> None:
        self.sim, self.http, self.url, self.root, self.target = sim, http, url, root, target
        self.sent = 0
        self.seen: list[int] = []

    def running(self) -> int:
        """Load tasks created on EvoLink and not finished, plus commands not yet submitted."""
        load = [t for t in self.sim.tasks.values() if t.prompt.startswith("load")]
        busy = sum(1 for t in load if self.sim.state(t)[0] in ("pending", "processing"))
        return busy + self.sent - len(load)

    async def top_up(self) -> None:
        missing = self.target - self.running()
        if missing > 0:
            first = self.sent
            self.sent += missing
            await asyncio.gather(
                *(
                    slack_command(self.http, self.url, self.root, n, "load", f"ULOAD{n % 20}")
                    for n in range(first, first + missing)
                )
            )

    async def keep(self) -> None:
        while True:
            self.seen.append(self.running())
            await self.top_up()
            await asyncio.sleep(0.1)


async def serve_world(task_seconds: str, in_flight: str) -> None:
    """Child process: the EvoLink simulator, the fake Slack, and the background load."""
    async with (
        FakeSlack() as fake,
        running_simulator(
            task_seconds=float(task_seconds), progress_noise=True, unlimited_credits=True
        ) as sim,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        print(f"READY {sim.base_url} {fake.api_url}", flush=True)
        bot_url = await read_stdin_line()
        root = fake.api_url.removesuffix("/api/")
        keeper = LoadKeeper(sim, http, bot_url, root, int(in_flight))
        await keeper.top_up()
        keep = asyncio.create_task(keeper.keep())
        print("LOADED", flush=True)
        await wait_for_stdin_eof()
        keep.cancel()
        settled = sum(1 for t in sim.tasks.values() if sim.state(t)[0] == "completed")
        print(
            f"STATS {min(keeper.seen[20:] or [0])} {max(keeper.seen or [0])} "
            f"{len(fake.shared_files)} {settled} {len(sim.tasks)}",
            flush=True,
        )


async def run(
    in_flight: int,
    burst: int,
    rounds: int,
    task_seconds: float,
    slack_session: str,
    pause: float,
) -> None:
    series: dict[str, list[float]] = {
        "slack vs bare (bot)": [],
        "slack vs bare (bare)": [],
        "slack mixed (bot)": [],
        "discord mixed (bot)": [],
    }
    world, urls = await spawn(__file__, "--role", "world", str(task_seconds), str(in_flight))
    sim_url, slack_api = urls
    slack_root = slack_api.removesuffix("/api/")
    async with (
        FakeDiscord() as fake_discord,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        guild, channel = fake_discord.add_guild()
        bot, (bot_url,) = await spawn(
            __file__,
            "--role",
            "bot",
            sim_url,
            slack_api,
            fake_discord.api_base,
            guild,
            slack_session,
        )
        bare, (bare_url,) = await spawn(__file__, "--role", "bare", slack_api)
        try:
            # Warm-up: bolt's first auth.test in both apps, discord.py's first defer.
            await slack_command(http, bot_url, slack_root, 0)
            await slack_command(http, bare_url, slack_root, 0)
            await discord_burst(fake_discord, guild, channel, 1, 900_000)
            assert world.stdin is not None and world.stdout is not None
            world.stdin.write(f"{bot_url}\n".encode())
            await world.stdin.drain()
            await asyncio.wait_for(world.stdout.readline(), 60)  # LOADED
            await asyncio.sleep(2.0)
            counter = 1

            def batch() -> range:
                nonlocal counter
                counter += burst
                return range(counter - burst, counter)

            for round_no in range(rounds):
                bot_part, bare_part = await asyncio.gather(
                    asyncio.gather(*(slack_command(http, bot_url, slack_root, n) for n in batch())),
                    asyncio.gather(
                        *(slack_command(http, bare_url, slack_root, n) for n in batch())
                    ),
                )
                series["slack vs bare (bot)"] += bot_part
                series["slack vs bare (bare)"] += bare_part
                await asyncio.sleep(pause)
                slack_part, discord_part = await asyncio.gather(
                    asyncio.gather(*(slack_command(http, bot_url, slack_root, n) for n in batch())),
                    discord_burst(fake_discord, guild, channel, burst, round_no * 1000),
                )
                series["slack mixed (bot)"] += slack_part
                series["discord mixed (bot)"] += discord_part
                await asyncio.sleep(pause)
        finally:
            bot_stats = (await stop(bot)).split()
            await stop(bare)
            stats = await stop(world)
    low, high, uploads, completed, tasks = (int(x) for x in stats.split()[1:6])
    print(
        f"{rounds} rounds, each: {burst} Slack commands to the bot and {burst} to a bare bolt "
        f"app at once, then {burst} Slack + {burst} Discord commands to the bot at once.\n"
        f"Processes: bot | bare bolt app | simulator+fake Slack+load | client+fake Discord.\n"
        f"Load jobs in flight on EvoLink while measuring: {low}-{high} (kept at {in_flight}, "
        f"{task_seconds:g} s tasks); {tasks} EvoLink tasks, {completed} completed, {uploads} "
        f"videos uploaded to Slack. Bot's Slack client session: {slack_session}."
    )
    header = (
        f"{'ack latency (ms)':<22} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8}"
    )
    print(header)
    print("-" * len(header))
    for name, values in series.items():
        print(row(name, values))
    if len(bot_stats) == 5:
        print(
            f"bot process: event-loop lag p99 {bot_stats[1]} ms, max {bot_stats[2]} ms; "
            f"{bot_stats[3]} full GC passes, longest {bot_stats[4]} ms"
        )
    print("worst per round (ms), in order:")
    for name, values in series.items():
        worst_of = [max(values[i : i + burst]) for i in range(0, len(values), burst)]
        print(f"  {name:<22} " + " ".join(f"{w:.0f}" for w in worst_of))
    ratio = percentile(series["slack vs bare (bot)"], 99) / percentile(
        series["slack vs bare (bare)"], 99
    )
    worst = max(percentile(v, 99) for k, v in series.items() if "bot" in k)
    print(
        f"slack p99 bot/bare = {ratio:.2f}x (target <= 1.5x); "
        f"worst bot p99 = {worst:.1f} ms (target <= 150 ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--task-seconds", type=float, default=30.0)
    parser.add_argument(
        "--pause", type=float, default=1.0, help="seconds between bursts (the bot absorbs one)"
    )
    parser.add_argument(
        "--slack-session",
        choices=[
            "per-call",
            "shared",
            "per-call+defer",
            "shared+defer",
            "per-call+freeze",
            "shared+defer+freeze",
        ],
        default="per-call",
        help="per-call: slack_sdk's default, as shipped; shared: one aiohttp session; +defer: "
        "work spawned by a command starts 20 ms after its ack; +freeze: gc.freeze() once "
        "started (proposed fixes, measured here)",
    )
    parser.add_argument("--role", choices=["bot", "bare", "world"], help=argparse.SUPPRESS)
    parser.add_argument("urls", nargs="*", help=argparse.SUPPRESS)  # a child's arguments
    args = parser.parse_args()
    if args.role == "bot":
        asyncio.run(serve_bot(*args.urls))
    elif args.role == "bare":
        asyncio.run(serve_bare(*args.urls))
    elif args.role == "world":
        asyncio.run(serve_world(*args.urls))
    else:
        asyncio.run(
            run(
                args.in_flight,
                args.burst,
                args.rounds,
                args.task_seconds,
                args.slack_session,
                args.pause,
            )
        )
