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
          commands spread round-robin over the replicas and `--burst` spread over `--bare`
          bare bolt AsyncApps (bench/ack_latency.py's, an ack-only /sora; as many processes as
          replicas, so each side takes the same share per process), the two bursts of a round
          one after the other (which first alternates; `--together`: at the same moment), from
          one load generator in a process of its own. Latency = POST sent → HTTP response (the ack).
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
import itertools
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.replica_acks import AckProbe
from bench.replica_world import LoggedSimulator, World, quantile, vm_rss_mb
from bot.infra.simulator import SimulatorConfig
from tests.adapters.slack.fake_slack import FakeSlack
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


def print_acks(bot_ms: list[float], bare_ms: list[float], args: argparse.Namespace) -> None:
    ratio = quantile(bot_ms, 0.99) / quantile(bare_ms, 0.99)
    print(f"  {'ack latency (ms)':<26} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} "
          f"{'mean':>8}")  # fmt: skip
    print(row("replicas (bot)", bot_ms))
    print(row(f"bare bolt app x{args.bare}", bare_ms))
    worst = [max(bot_ms[i : i + args.burst]) for i in range(0, len(bot_ms), args.burst)]
    print("  bot worst per burst: " + " ".join(f"{w:.0f}" for w in worst))
    print(
        f"  bot p99 {quantile(bot_ms, 0.99):.1f} ms (target <= 150): "
        f"{'met' if quantile(bot_ms, 0.99) <= 150 else 'MISSED'}; bot/bare p99 = {ratio:.2f}x "
        f"(target <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}"
    )


# ---- ack ------------------------------------------------------------------------------------


async def part_ack(world: World, pg: PgServer, args: argparse.Namespace, gc_mode: str) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    earlier = set(world.sim.tasks)
    replicas = await world.start_replicas(args.replicas, gc_mode=gc_mode, tag="ack")
    try:
        took = await world.fill(args.in_flight, teams=4, users_per_team=20, concurrency=50)
        await world.wait_for(lambda: world.sim.running(earlier) >= args.in_flight, 120)
        await asyncio.sleep(2.0)
        async with AckProbe(world, bare=args.bare) as probe:
            bot_ms, bare_ms = await probe.rounds(
                args.rounds, burst=args.burst, pause=args.pause, together=args.together,
                skip=earlier,
            )  # fmt: skip
        in_flight = probe.in_flight
        spread = await world.spread()
    finally:
        await world.stop_replicas()
    print(
        f"\n[ack] ({load()}) --gc {gc_mode}: {len(replicas)} replicas; {args.in_flight} load "
        f"jobs sent in {took:.1f} s; EvoLink tasks in flight during the rounds {min(in_flight)}–"
        f"{max(in_flight)}; {args.rounds} rounds of {args.burst} to the replicas + {args.burst} "
        f"round-robin to {args.bare} bare app process(es), "
        f"{'at the same moment' if args.together else 'one after the other'}, "
        f"bursts {args.pause:g} s apart"
    )
    print_acks(bot_ms, bare_ms, args)
    print(f"  jobs followed per replica after the rounds: {spread}")
    for replica in replicas:
        print(gc_line(replica.replica_id, replica.stats))


# ---- takeover -------------------------------------------------------------------------------


async def part_takeover(world: World, pg: PgServer, args: argparse.Namespace, lease: float) -> None:
    """`--takeover-trials` kills in one set of replicas: each time the replica leasing the most
    is SIGKILLed at a random moment (so at a random phase of its lease renewals), the time to
    the first read of one of its jobs by another replica is taken, and a new replica (a new
    REPLICA_ID, as a restarted pod) takes its slot before the next kill."""
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    tag = f"lease{lease:g}-"
    replicas = await world.start_replicas(args.replicas, lease_seconds=lease, tag=tag)
    jobs: int = args.takeover_jobs
    owners_sql = (
        "SELECT lease_owner, COUNT(*) AS n FROM jobs WHERE status = 'submitted'"
        " AND lease_owner IS NOT NULL GROUP BY lease_owner"
    )
    rng = random.Random(12)
    lines: list[str] = []
    firsts: list[float] = []
    try:
        await world.fill(jobs, teams=2, users_per_team=20, concurrency=50)

        async def all_leased() -> bool:
            leased: int = sum(int(r["n"]) for r in await world.sql(owners_sql))
            return leased >= jobs

        if not await world.wait_for(all_leased, 120):
            raise SystemExit(f"[takeover] not all {jobs} jobs submitted and leased in 120 s")
        for trial in range(args.takeover_trials):
            await asyncio.sleep(lease / 3 + 1 + rng.uniform(0, lease / 3))
            first, line = await kill_biggest(world, owners_sql, lease)
            firsts.append(first)
            lines.append(f"  kill {trial + 1}: {line}")
            dead = next(r for r in world.replicas if r.proc.returncode is not None)
            fresh = await world.start_one(dead.slot, f"{tag}{dead.slot}g{trial + 1}", lease)
            world.replicas[world.replicas.index(dead)] = fresh
        if not await world.wait_for(all_leased, lease * 2 + 30):
            lines.append("  (not every job leased again at the end)")
    finally:
        await world.stop_replicas()
    worst = max(firsts, default=float("nan"))
    print(
        f"\n[takeover] ({load()}) LEASE_SECONDS={lease:g}: {jobs} jobs (1 h tasks) over "
        f"{len(replicas)} replicas, {len(firsts)} kills of the replica leasing the most"
    )
    print("\n".join(lines))
    print(
        f"  kill -> first read by another replica: min {min(firsts, default=float('nan')):.1f} s,"
        f" median {quantile(firsts, 0.5):.1f} s, max {worst:.1f} s "
        f"(target <= 30 s: {'met' if worst <= 30 else 'MISSED'})"
    )


async def kill_biggest(world: World, owners_sql: str, lease: float) -> tuple[float, str]:
    """SIGKILL the replica leasing the most open jobs; (seconds to the first read of one of its
    jobs that arrived after it was reaped, one line of what happened)."""
    owners = {str(r["lease_owner"]): int(r["n"]) for r in await world.sql(owners_sql)}
    victim_id = max(owners, key=lambda k: owners[k])
    victim = next(r for r in world.replicas if r.replica_id == victim_id)
    rows = await world.sql(
        "SELECT task_id FROM jobs WHERE lease_owner = $1 AND status = 'submitted'", victim_id
    )
    tasks = [str(r["task_id"]) for r in rows]
    killed = world.sim.clock()
    victim.proc.send_signal(signal.SIGKILL)
    await victim.proc.wait()
    reaped = world.sim.clock()

    def read_again() -> dict[str, float]:
        seen = {}
        for task_id in tasks:
            after = [r.arrived for r in world.sim.reads.get(task_id, []) if r.arrived > reaped]
            if after:
                seen[task_id] = min(after) - killed
        return seen

    await world.wait_for(lambda: len(read_again()) == len(tasks), lease * 2 + 60)
    delays = sorted(read_again().values())
    new_owners = await world.sql(
        "SELECT lease_owner, COUNT(*) AS n FROM jobs WHERE task_id = ANY($1::text[])"
        " GROUP BY lease_owner",
        tasks,
    )
    first = delays[0] if delays else float("inf")
    line = (
        f"leases {owners}; SIGKILL {victim_id} ({len(tasks)} jobs, reaped in "
        f"{(reaped - killed) * 1000:.0f} ms) -> first read by another replica {first:.1f} s, "
        f"{len(delays)}/{len(tasks)} read again, the last after "
        f"{(delays[-1] if delays else float('nan')):.1f} s; now leased by "
        f"{ {str(r[0]): int(r[1]) for r in new_owners} }"
    )
    return first, line


# ---- memory ---------------------------------------------------------------------------------


async def part_memory(
    world: World, pg: PgServer, args: argparse.Namespace, gc_mode: str = "shipped"
) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    world.sim.config.task_seconds = LONG
    jobs = args.memory_jobs
    earlier = set(world.sim.tasks)
    teams = max(1, -(-jobs // 900))  # MAX_JOBS_PER_WORKSPACE is at most 1000
    replicas = await world.start_replicas(args.replicas, tag="mem", gc_mode=gc_mode)
    start_rss = {r.replica_id: vm_rss_mb(r.proc.pid) for r in replicas}
    peak = dict(start_rss)

    async def sample() -> None:
        while True:
            for r in replicas:
                if r.proc.returncode is None:
                    peak[r.replica_id] = max(peak[r.replica_id], vm_rss_mb(r.proc.pid))
            await asyncio.sleep(0.5)

    followed: dict[str, list[int]] = {r.replica_id: [] for r in replicas}

    async def follow_counts() -> None:
        while True:
            for replica_id, n in (await world.spread()).items():
                followed[replica_id].append(int(n))
            await asyncio.sleep(2.0)

    sampler = asyncio.create_task(sample())
    counter = asyncio.create_task(follow_counts())
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
        for r in replicas:  # a census of the objects the collector tracks, into its log
            r.proc.send_signal(signal.SIGUSR1)
        statuses = await world.jobs_by_status()
        slack_calls = world.slack_calls()
        acks: tuple[list[float], list[float]] = ([], [])
        if args.memory_acks:  # the ack with thousands of jobs alive in each replica
            async with AckProbe(world, bare=args.bare) as probe:
                acks = await probe.rounds(
                    args.memory_acks, burst=args.burst, pause=args.pause,
                    together=args.together, skip=earlier,
                )  # fmt: skip
    finally:
        sampler.cancel()
        counter.cancel()
        await world.stop_replicas()
    print(
        f"\n[memory] ({load()}) --memory-gc {gc_mode}: {jobs} jobs (1 h tasks) from "
        f"{teams} workspaces x 40 users, sent in {took:.1f} s; EvoLink tasks in flight "
        f"{world.sim.running(earlier)} ({'all' if got else 'NOT all'}); held {held:.0f} s; "
        f"jobs {statuses}"
    )
    print(f"  fake Slack received: {slack_calls}")
    print(f"  {'replica':<8} {'jobs':>6} {'RSS start':>10} {'RSS end':>9} {'peak':>7}  target")
    for r, h in zip(replicas, health, strict=True):
        print(
            f"  {r.replica_id:<8} {h.get('jobs_in_flight', '?'):>6} "
            f"{start_rss[r.replica_id]:>10.1f} {end_rss[r.replica_id]:>9.1f} "
            f"{peak[r.replica_id]:>7.1f}  <= 250 MB: "
            f"{'met' if peak[r.replica_id] <= 250 else 'MISSED'}"
        )
    for r in replicas:
        series = followed[r.replica_id]
        drops = [a - b for a, b in itertools.pairwise(series) if a - b >= 100]
        trouble = r.lease_trouble
        print(
            f"  {r.replica_id}: jobs followed every 2 s, max {max(series, default=0)}, last "
            f"{series[-1] if series else '?'}, falls of >= 100: {drops or 'none'}; "
            f"lease warnings/errors in its log: {len(trouble)}"
            + (f", e.g. {trouble[-1][:160]!r}" if trouble else "")
        )
    biggest = max(replicas, key=lambda r: peak[r.replica_id])
    census = [
        line
        for line in biggest.log_path.read_text(errors="replace").splitlines()
        if line.startswith("CENSUS")
    ]
    if census:
        print(f"  {biggest.replica_id} {census[-1][:600]}")
    if acks[0]:
        print(f"  ack probe, {args.memory_acks} rounds after the RSS readings:")
        print_acks(*acks, args)
    for r in replicas:
        print(gc_line(r.replica_id, r.stats))


# ---- reads ----------------------------------------------------------------------------------


async def part_reads(
    world: World, pg: PgServer, args: argparse.Namespace, gc_mode: str = "shipped"
) -> None:
    world.database_url = await asyncio.to_thread(pg.fresh_database)
    sim = world.sim
    sim.config.task_seconds = args.reads_task_seconds
    sim.config.progress_noise = True
    sim.config.estimate_error = args.estimate_error
    jobs = args.reads_jobs
    before = set(sim.tasks)
    replicas = await world.start_replicas(args.replicas, tag="reads", gc_mode=gc_mode)
    try:
        took = await world.fill(jobs, teams=3, users_per_team=40, concurrency=50)
        await world.wait_for(lambda: len(sim.tasks) - len(before) >= jobs, 120)
        mine = [t for i, t in sim.tasks.items() if i not in before]
        window_start, requests_start = sim.clock(), sim.status_requests()
        first_end = min(t.started + t.seconds for t in mine)
        await asyncio.sleep(max(0.0, first_end - sim.clock()))
        window, requests = sim.clock() - window_start, sim.status_requests() - requests_start
        if len(mine) < jobs:  # the first ended before the last was submitted: no such window
            window = 0.0
        spread = await world.spread()

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
        f"{len(replicas)} replicas, --gc {gc_mode}; sent in {took:.1f} s; jobs at the end "
        f"{statuses}"
    )
    print(f"  jobs followed per replica when the first task ended: {spread}")
    if window > 0:
        print(
            f"  all {jobs} in flight for {window:.1f} s: {requests} status requests = "
            f"{per_job:.3f} per job per 30 s (target <= 1: {'met' if per_job <= 1 else 'MISSED'})"
        )
    else:
        print(f"  never all {jobs} in flight at once (see the whole-run figure)")
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
                    for mode in args.memory_gc.split(";"):
                        await part_memory(world, pg, args, mode)
                if "reads" in parts:
                    for mode in args.reads_gc.split(";"):
                        await part_reads(world, pg, args, mode)
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
    parser.add_argument("--bare", type=int, default=3,
                        help="bare bolt app processes (3: as many as replicas)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--together", action="store_true",
                        help="bot and bare bursts at the same moment")  # fmt: skip
    parser.add_argument("--pause", type=float, default=1.0)
    parser.add_argument("--gc", default="shipped",
                        help="replica GC modes, ';'-separated, one ack run each: shipped, "
                        "nofreeze, threshold:A,B,C, refreeze, defer:MS, eager, unfair, "
                        "parts joined by + (bench/replica_bot.py)")  # fmt: skip
    parser.add_argument("--leases", default="30,5", help="LEASE_SECONDS values, one run each")
    parser.add_argument("--takeover-jobs", type=int, default=300)
    parser.add_argument("--takeover-trials", type=int, default=3)
    parser.add_argument("--memory-jobs", type=int, default=10_000)
    parser.add_argument("--memory-hold", type=float, default=15.0,
                        help="seconds all stay in flight before the last RSS reading")  # fmt: skip
    parser.add_argument("--memory-gc", default="shipped",
                        help="the replicas' --gc modes, ';'-separated, one run each")  # fmt: skip
    parser.add_argument("--memory-acks", type=int, default=0,
                        help="ack rounds once all are in flight (as --part ack's)")  # fmt: skip
    parser.add_argument("--reads-jobs", type=int, default=2000)
    parser.add_argument("--reads-task-seconds", type=float, default=90.0)
    parser.add_argument("--estimate-error", type=float, default=1.0)
    parser.add_argument("--reads-gc", default="shipped",
                        help="the replicas' --gc modes for the reads part, ';'-separated, one "
                        "run each (policy:PATH replays another polling policy)")  # fmt: skip
    args = parser.parse_args()
    asyncio.run(main(args))
