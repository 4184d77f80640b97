"""Replicas (issue 12): three bot processes on one PostgreSQL — ack latency, takeover, memory,
status reads at scale.

    python bench/replicas.py [--part ack|takeover|memory|reads|all] [sizes…]

This process starts a throwaway PostgreSQL server (tests/pg.py, a fresh database per part) and
serves the EvoLink simulator (with a read log, bench/replica_world.py) and the fake Slack Web
API; each replica is `python bench/replica_bot.py`, wired as `sora-bot run` is (run_bot: Slack
in HTTP mode, POST /slack/events). Every job comes in as a signed Slack `/sora` command.
No callbacks (no PUBLIC_BASE_URL): the replicas poll. Tasks are long unless a part needs them
to end.

ack       `--in-flight` jobs (1 h tasks) in flight, then `--rounds` rounds of `--burst` signed
          commands spread round-robin over the replicas and `--burst` to a bare bolt AsyncApp
          (bench/ack_latency.py's, an ack-only /sora) at the same moment, from one load
          generator in a process of its own. Latency = POST sent → HTTP response (the ack).
          Each `--gc` mode is one run (fresh database); the replicas report their GC pauses.
          Targets: p99 ≤ 150 ms and ≤ 1.5× the bare app's p99.
takeover  `--takeover-jobs` long jobs; the replica leasing the most is SIGKILLed; time from the
          kill to the first status read of one of its jobs (one that arrived after the kill
          was reaped, so not the dead replica's), per `--leases`. Target ≤ 30 s.
memory    `--memory-jobs` jobs in flight (1 h tasks) over the replicas, from 12 workspaces
          (MAX_JOBS_PER_WORKSPACE ≤ 1000 each); VmRSS of each replica. Target ≤ 250 MB each.
reads     `--reads-jobs` jobs, noisy tasks of `--reads-task-seconds`: status requests (a batch
          read is one) per job in flight per 30 s while all are in flight — target ≤ 1 — and
          the lag from a task's completion to the first read that answered "completed",
          p50/p95/max — target p95 ≤ 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.children import read_stdin_line, spawn, stop
from bench.replica_world import ROOT, LoggedSimulator, World, quantile, vm_rss_mb
from bot.infra.simulator import SimulatorConfig
from tests.adapters.slack.fake_slack import FakeSlack, form_headers, slash_command_body
from tests.pg import PgServer

LONG = 3600.0  # seconds: a task that does not end during the part


def load() -> str:
    """The machine's load average (1 min): other work on the 2 cores moves every figure."""
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def row(name: str, ms: list[float]) -> str:
    return (
        f"  {name:<26} {len(ms):>5} {quantile(ms, 0.5):>8.1f} {quantile(ms, 0.95):>8.1f} "
        f"{quantile(ms, 0.99):>8.1f} {max(ms):>8.1f} {statistics.fmean(ms):>8.1f}"
    )


def gc_line(replica_id: str, stats: dict[str, Any]) -> str:
    if not stats:
        return f"  {replica_id}: no stats (it did not stop cleanly)"
    g = stats["gc"]
    return (
        f"  {replica_id}: gen2 {g['2']['n']} passes, longest {g['2']['max']:.1f} ms; gen1 "
        f"longest {g['1']['max']:.1f} ms; gen0 p99 {g['0']['p99']:.1f} ms ({g['0']['n']}); "
        f"loop lag p99 {stats['lag']['p99']:.1f} ms, max {stats['lag']['max']:.1f} ms; "
        f"RSS {stats['rss_mb']:.0f} MB; frozen {stats['frozen']}; threshold {stats['threshold']}"
    )


# ---- ack ------------------------------------------------------------------------------------


async def client_role(slack_root: str, bare_url: str, *bot_urls: str) -> None:
    """Child: the load generator. Each stdin line `burst N` sends N commands round-robin to the
    replicas and N to the bare app at once; answers `LAT {"bot": [...], "bare": [...]}`."""
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
        print("READY", flush=True)
        while (line := await read_stdin_line()).startswith("burst"):
            n = int(line.split()[1])
            bot, bare = await asyncio.gather(
                asyncio.gather(*(one(http, bot_urls[i % len(bot_urls)]) for i in range(n))),
                asyncio.gather(*(one(http, bare_url) for _ in range(n))),
            )
            print("LAT " + json.dumps({"bot": bot, "bare": bare}), flush=True)


async def part_ack(world: World, pg: PgServer, args: argparse.Namespace, gc_mode: str) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    earlier = set(world.sim.tasks)
    replicas = await world.start_replicas(args.replicas, gc_mode=gc_mode, tag="ack")
    bare, (bare_url,) = await spawn(str(ROOT / "bench" / "ack_latency.py"), "--role", "bare",
                                    world.slack_api)  # fmt: skip
    client, _ = await spawn(__file__, "--role", "client", world.slack_root, bare_url,
                            *(r.url for r in replicas))  # fmt: skip
    assert client.stdin is not None and client.stdout is not None
    bot_ms: list[float] = []
    bare_ms: list[float] = []
    in_flight: list[int] = []
    try:
        took = await world.fill(args.in_flight, teams=4, users_per_team=20, concurrency=50)
        await world.wait_for(lambda: world.sim.running(earlier) >= args.in_flight, 120)
        await asyncio.sleep(2.0)
        for _ in range(args.rounds):
            in_flight.append(world.sim.running(earlier))
            client.stdin.write(f"burst {args.burst}\n".encode())
            await client.stdin.drain()
            line = (await asyncio.wait_for(client.stdout.readline(), 60)).decode()
            got = json.loads(line.removeprefix("LAT "))
            bot_ms += got["bot"]
            bare_ms += got["bare"]
            await asyncio.sleep(args.pause)
    finally:
        await stop(client)
        await stop(bare)
        await world.stop_replicas()
    ratio = quantile(bot_ms, 0.99) / quantile(bare_ms, 0.99)
    print(
        f"\n[ack] ({load()}) --gc {gc_mode}: {len(replicas)} replicas; {args.in_flight} load "
        f"jobs sent in {took:.1f} s; EvoLink tasks in flight during the rounds {min(in_flight)}–"
        f"{max(in_flight)}; {args.rounds} rounds of {args.burst} to the replicas + {args.burst} "
        f"to the bare app at once, {args.pause:g} s apart"
    )
    print(f"  {'ack latency (ms)':<26} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} "
          f"{'mean':>8}")  # fmt: skip
    print(row("replicas (bot)", bot_ms))
    print(row("bare bolt app", bare_ms))
    worst = [max(bot_ms[i : i + args.burst]) for i in range(0, len(bot_ms), args.burst)]
    print("  bot worst per round: " + " ".join(f"{w:.0f}" for w in worst))
    print(
        f"  bot p99 {quantile(bot_ms, 0.99):.1f} ms (target <= 150): "
        f"{'met' if quantile(bot_ms, 0.99) <= 150 else 'MISSED'}; bot/bare p99 = {ratio:.2f}x "
        f"(target <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}"
    )
    for replica in replicas:
        print(gc_line(replica.replica_id, replica.stats))


# ---- takeover -------------------------------------------------------------------------------


async def part_takeover(world: World, pg: PgServer, args: argparse.Namespace, lease: float) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    tag = f"lease{lease:g}-"
    replicas = await world.start_replicas(args.replicas, lease_seconds=lease, tag=tag)
    jobs: int = args.takeover_jobs
    owners_sql = (
        "SELECT lease_owner, COUNT(*) AS n FROM jobs WHERE status = 'submitted'"
        " AND lease_owner IS NOT NULL GROUP BY lease_owner"
    )
    try:
        await world.fill(jobs, teams=2, users_per_team=20, concurrency=50)

        async def all_leased() -> bool:
            leased: int = sum(int(r["n"]) for r in await world.sql(owners_sql))
            return leased >= jobs

        if not await world.wait_for(all_leased, 120):
            raise SystemExit(f"[takeover] not all {jobs} jobs submitted and leased in 120 s")
        await asyncio.sleep(lease / 3 + 1)  # at least one renewal round behind us
        owners = {str(r["lease_owner"]): int(r["n"]) for r in await world.sql(owners_sql)}
        victim_id = max(owners, key=lambda k: owners[k])
        victim = next(r for r in replicas if r.replica_id == victim_id)
        rows = await world.sql(
            "SELECT task_id FROM jobs WHERE lease_owner = $1 AND status = 'submitted'", victim_id
        )
        tasks = [str(r["task_id"]) for r in rows]
        killed = world.sim.clock()
        victim.proc.send_signal(signal.SIGKILL)
        await victim.proc.wait()
        reaped = world.sim.clock()

        def firsts() -> dict[str, float]:
            seen = {}
            for task_id in tasks:
                after = [r.arrived for r in world.sim.reads.get(task_id, []) if r.arrived > reaped]
                if after:
                    seen[task_id] = min(after)
            return seen

        await world.wait_for(lambda: len(firsts()) == len(tasks), lease * 2 + 60)
        seen = firsts()
        new_owners = await world.sql(
            "SELECT lease_owner, COUNT(*) AS n FROM jobs WHERE task_id = ANY($1::text[])"
            " GROUP BY lease_owner",
            tasks,
        )
    finally:
        await world.stop_replicas()
    delays = sorted(t - killed for t in seen.values())
    first = delays[0] if delays else float("nan")
    print(
        f"\n[takeover] ({load()}) LEASE_SECONDS={lease:g}: {jobs} jobs (1 h tasks) over "
        f"{len(replicas)} replicas, leases {owners}; SIGKILL {victim_id} ({len(tasks)} jobs), "
        f"reaped after {(reaped - killed) * 1000:.0f} ms"
    )
    print(
        f"  kill -> first status read of one of its jobs by another replica: {first:.1f} s "
        f"(target <= 30 s: {'met' if first <= 30 else 'MISSED'}); all {len(tasks)} read again: "
        f"{len(seen)}/{len(tasks)}, last after {(delays[-1] if delays else float('nan')):.1f} s"
        f", p50 {quantile(delays, 0.5):.1f} s"
    )
    print(f"  their leases now: {{{', '.join(f'{r[0]}: {r[1]}' for r in new_owners)}}}")


# ---- memory ---------------------------------------------------------------------------------


async def part_memory(world: World, pg: PgServer, args: argparse.Namespace) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    jobs = args.memory_jobs
    earlier = set(world.sim.tasks)
    teams = max(1, -(-jobs // 900))  # MAX_JOBS_PER_WORKSPACE is at most 1000
    replicas = await world.start_replicas(args.replicas, tag="mem")
    start_rss = {r.replica_id: vm_rss_mb(r.proc.pid) for r in replicas}
    peak = dict(start_rss)

    async def sample() -> None:
        while True:
            for r in replicas:
                if r.proc.returncode is None:
                    peak[r.replica_id] = max(peak[r.replica_id], vm_rss_mb(r.proc.pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    try:
        took = await world.fill(jobs, teams=teams, users_per_team=40, concurrency=50)
        got = await world.wait_for(lambda: world.sim.running(earlier) >= jobs, 300)
        all_in = time.monotonic()
        await asyncio.sleep(args.memory_hold)
        health = []
        for r in replicas:
            async with world.http.get(r.health_url) as resp:
                health.append(await resp.json())
        end_rss = {r.replica_id: vm_rss_mb(r.proc.pid) for r in replicas}
        held = time.monotonic() - all_in
        statuses = await world.jobs_by_status()
        slack_calls = world.slack_calls()
    finally:
        sampler.cancel()
        await world.stop_replicas()
    print(
        f"\n[memory] ({load()}) {jobs} jobs (1 h tasks) from {teams} workspaces x 40 users, "
        f"sent in {took:.1f} s; EvoLink tasks in flight {world.sim.running(earlier)} "
        f"({'all' if got else 'NOT all'}); held {held:.0f} s; jobs {statuses}"
    )
    print(f"  {'replica':<8} {'jobs':>6} {'RSS start':>10} {'RSS end':>9} {'peak':>7}  target")
    print(f"  fake Slack received: {slack_calls}")
    for r, h in zip(replicas, health, strict=True):
        print(
            f"  {r.replica_id:<8} {h.get('jobs_in_flight', '?'):>6} "
            f"{start_rss[r.replica_id]:>10.1f} {end_rss[r.replica_id]:>9.1f} "
            f"{peak[r.replica_id]:>7.1f}  <= 250 MB: "
            f"{'met' if peak[r.replica_id] <= 250 else 'MISSED'}"
        )
    for r in replicas:
        print(gc_line(r.replica_id, r.stats))


# ---- reads ----------------------------------------------------------------------------------


async def part_reads(world: World, pg: PgServer, args: argparse.Namespace) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    sim = world.sim
    sim.config.task_seconds = args.reads_task_seconds
    sim.config.progress_noise = True
    sim.config.estimate_error = args.estimate_error
    jobs = args.reads_jobs
    before = set(sim.tasks)
    replicas = await world.start_replicas(args.replicas, tag="reads")
    try:
        took = await world.fill(jobs, teams=3, users_per_team=40, concurrency=50)
        await world.wait_for(lambda: len(sim.tasks) - len(before) >= jobs, 120)
        mine = [t for i, t in sim.tasks.items() if i not in before]
        window_start, requests_start = sim.clock(), sim.status_requests()
        first_end = min(t.started + t.seconds for t in mine)
        await asyncio.sleep(max(0.0, first_end - sim.clock()))
        window, requests = sim.clock() - window_start, sim.status_requests() - requests_start

        def seen_done() -> int:
            return sum(
                1 for t in mine if any(r.status == "completed" for r in sim.reads.get(t.id, []))
            )

        await world.wait_for(lambda: seen_done() == len(mine), args.reads_task_seconds)
        total_requests = sim.status_requests()
        statuses = await world.jobs_by_status()
    finally:
        await world.stop_replicas()
    lags, life, ids_read = [], 0.0, 0
    for task in mine:
        reads = sim.reads.get(task.id, [])
        ids_read += len(reads)
        done = [r.answered for r in reads if r.status == "completed"]
        end = task.started + task.seconds
        if done:
            lags.append(min(done) - end)
        life += (min(done) if done else sim.clock()) - task.started
    per_job = requests / jobs / (window / 30) if window > 0 else float("nan")
    overall = total_requests / (life / 30)
    callbacks = sum(1 for t in mine if t.callback_url)
    print(
        f"\n[reads] ({load()}) {jobs} jobs, {args.reads_task_seconds:g} s noisy tasks (estimate x"
        f"{args.estimate_error:g}), no callbacks ({callbacks} tasks had a callback URL), "
        f"{len(replicas)} replicas; sent in {took:.1f} s; jobs at the end {statuses}"
    )
    print(
        f"  all {jobs} in flight for {window:.1f} s: {requests} status requests = "
        f"{per_job:.3f} per job per 30 s (target <= 1: {'met' if per_job <= 1 else 'MISSED'})"
    )
    print(
        f"  whole run: {total_requests} requests ({sim.counts['batch']} batch, "
        f"{sim.counts['task']} single) for {ids_read} task reads "
        f"({ids_read / jobs:.1f} per job) = {overall:.3f} requests per job per 30 s of life"
    )
    print(
        f"  completion -> read that saw it: n {len(lags)}/{jobs}, p50 {quantile(lags, 0.5):.2f} s,"
        f" p95 {quantile(lags, 0.95):.2f} s, max {max(lags, default=float('nan')):.2f} s "
        f"(target p95 <= 5 s: {'met' if quantile(lags, 0.95) <= 5 else 'MISSED'})"
    )
    for r in replicas:
        print(gc_line(r.replica_id, r.stats))


# ---- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    parts = ["ack", "takeover", "memory", "reads"] if args.part == "all" else [args.part]
    started = time.monotonic()
    pg = await asyncio.to_thread(PgServer.start)
    print(f"PostgreSQL {pg.bindir.parent.name} on 127.0.0.1:{pg.port}; parts: {', '.join(parts)}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = SimulatorConfig(task_seconds=LONG, unlimited_credits=True, seed=12)
            async with (
                FakeSlack() as fake,
                LoggedSimulator.serve(config) as served,
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
            ):
                sim = cast(LoggedSimulator, served)
                world = World(Path(tmp), sim, fake.api_url, http, slack=fake)
                if "ack" in parts:
                    for mode in args.gc.split(";"):
                        await part_ack(world, pg, args, mode)
                if "takeover" in parts:
                    for lease in (float(x) for x in args.leases.split(",")):
                        await part_takeover(world, pg, args, lease)
                if "memory" in parts:
                    await part_memory(world, pg, args)
                if "reads" in parts:
                    await part_reads(world, pg, args)
                fake.messages.clear()
    finally:
        await asyncio.to_thread(pg.stop)
    print(f"\nbench/replicas.py took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["ack", "takeover", "memory", "reads", "all"],
                        default="all")  # fmt: skip
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=210)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--gc", default="shipped",
                        help="replica GC modes, ';'-separated, one ack run each: shipped, "
                        "nofreeze, threshold:A,B,C (bench/replica_bot.py)")  # fmt: skip
    parser.add_argument("--leases", default="30,5", help="LEASE_SECONDS values, one run each")
    parser.add_argument("--takeover-jobs", type=int, default=300)
    parser.add_argument("--memory-jobs", type=int, default=10_000)
    parser.add_argument("--memory-hold", type=float, default=15.0,
                        help="seconds all stay in flight before the last RSS reading")  # fmt: skip
    parser.add_argument("--reads-jobs", type=int, default=2000)
    parser.add_argument("--reads-task-seconds", type=float, default=90.0)
    parser.add_argument("--estimate-error", type=float, default=1.0)
    parser.add_argument("--role", choices=["client"], help=argparse.SUPPRESS)
    parser.add_argument("urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "client":
        asyncio.run(client_role(*args.urls))
    else:
        asyncio.run(main(args))
