"""Several whole bots (replicas) on one PostgreSQL database and one simulator share the jobs
exactly once: each job followed by one replica, submitted once, delivered once, the caps never
exceeded; a replica that dies without releasing has its jobs taken over within about
LEASE_SECONDS; a callback that reaches the replica not holding the job wakes the holder.
Plus /healthz, /metrics and a /media link whose file is on another replica's disk."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from bot.domain.models import Requester, Surface
from bot.infra.simulator import Simulator
from bot.services.tracker import Tracker
from tests.prices import SHORTEST, price_of
from tests.support import RecordingPort, RunningCore, running_core, until

LEASE = 3.0
USERS = [Requester(platform="test", workspace="W1", user=f"u{i}") for i in range(4)]
PROMPT = f"a paper boat --duration {SHORTEST}"


class FollowLog(dict[str, set[str]]):
    """Per job, the replicas that followed it; `spans`: per job, each follow as [replica,
    started, ended (None while it runs)], in monotonic seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: dict[str, list[list[Any]]] = {}


def record_follows(tracker: Tracker, replica: str, log: FollowLog) -> None:
    """Note which replica follows which job (the tracker's one follow coroutine), and when
    each follow starts and ends (`log.spans`)."""
    follow = tracker._follow
    spans = log.spans

    async def recording(job_id: str) -> None:
        log.setdefault(job_id, set()).add(replica)
        span: list[Any] = [replica, time.monotonic(), None]
        spans.setdefault(job_id, []).append(span)
        try:
            await follow(job_id)
        finally:
            span[2] = time.monotonic()

    tracker._follow = recording  # type: ignore[method-assign]


def overlapping(log: FollowLog) -> dict[str, list[list[Any]]]:
    """The jobs two replicas followed at the same time (a handover over the fair share, where
    one stops and then another starts, is not an overlap)."""
    found = {}
    for job_id, spans in log.spans.items():
        ordered = sorted(spans, key=lambda span: span[1])
        for before, after in itertools.pairwise(ordered):
            if before[2] is None or after[1] < before[2]:
                found[job_id] = ordered
    return found


@asynccontextmanager
async def replicas(
    tmp_path: Path, sim: Simulator, pg_url: str, names: list[str], **settings: Any
) -> AsyncIterator[tuple[list[RunningCore], list[RecordingPort], FollowLog]]:
    """One bot per name on `pg_url` (MEDIA_DIR shared, as it must be), each with its own
    recording port of the `test` platform."""
    follows = FollowLog()
    ports = [RecordingPort("test") for _ in names]
    async with AsyncExitStack() as stack:
        cores = []
        for name, port in zip(names, ports, strict=True):
            folder = tmp_path / name
            folder.mkdir()
            rc = await stack.enter_async_context(
                running_core(
                    folder,
                    sim,
                    ports=[port],
                    database_url=pg_url,
                    replica_id=name,
                    lease_seconds=LEASE,
                    media_dir=tmp_path / "media",
                    user_credits_per_period=price_of(PROMPT) * 20,
                    **settings,
                )
            )
            record_follows(rc.core.tracker, name, follows)
            cores.append(rc)
        yield cores, ports, follows


def delivered(ports: list[RecordingPort]) -> Counter[str]:
    return Counter(e.job.id for port in ports for e in port.events if e.kind == "delivered")


def submits(sim: Simulator) -> Counter[str]:
    return Counter(r.headers["Idempotency-Key"] for r in sim.requests if r.kind == "submit")


async def test_two_replicas_share_twenty_jobs_exactly_once(
    tmp_path: Path, sim: Simulator, pg_url: str
) -> None:
    sim.config.task_seconds = 0.4
    caps = {"max_jobs_per_user": 2, "max_jobs_per_workspace": 5}
    async with replicas(tmp_path, sim, pg_url, ["ra", "rb"], **caps) as (cores, ports, follows):
        book = cores[0].core.book
        worst_user, worst_workspace = 0, 0
        watching = True

        async def watch_caps() -> None:
            nonlocal worst_user, worst_workspace
            while watching:
                rows = await book.in_flight_by_user()
                worst_user = max([worst_user, *(n for *_, n in rows)])
                worst_workspace = max(worst_workspace, sum(n for *_, n in rows))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_caps())
        jobs = []
        for i in range(20):
            service = cores[i % 2].core.service
            who = USERS[i % len(USERS)]
            jobs.append(await service.submit(who, service.parse(f"{PROMPT} {i}"), Surface()))
        ids = [job.id for job in jobs]
        await until(lambda: set(delivered(ports)) >= set(ids), 60)
        await asyncio.sleep(0.5)  # a second delivery, if there were one, would show by now
        watching = False
        await watcher

        assert delivered(ports) == Counter({i: 1 for i in ids}), "each job delivered once"
        assert submits(sim) == Counter({i: 1 for i in ids}), "each job submitted once"
        assert len(sim.tasks) == 20
        # One follower at a time: a job over a replica's fair share may be handed over (the
        # first stops following, gives the lease back, the other claims it), never shared.
        assert all(follows[i] for i in ids) and overlapping(follows) == {}, "one follower a job"
        per_replica = Counter(r for i in ids for r in follows[i])
        assert set(per_replica) == {"ra", "rb"}, f"both replicas worked: {per_replica}"
        assert worst_user <= caps["max_jobs_per_user"]
        assert worst_workspace <= caps["max_jobs_per_workspace"]
        assert worst_user == caps["max_jobs_per_user"]  # the caps were reached, and held
        for rc in cores:
            assert rc.core.tracker.leases.held == set()  # ended jobs are nobody's


async def test_a_dead_replicas_jobs_are_taken_over_and_finished_once(
    tmp_path: Path, sim: Simulator, pg_url: str
) -> None:
    sim.config.task_seconds = 2.0
    async with replicas(tmp_path, sim, pg_url, ["dying", "survivor"], max_jobs_per_user=10) as (
        cores,
        ports,
        follows,
    ):
        dying, survivor = cores
        service = dying.core.service
        jobs = [
            await service.submit(USERS[0], service.parse(f"{PROMPT} {i}"), Surface())
            for i in range(4)
        ]
        ids = [job.id for job in jobs]
        book = survivor.core.book

        async def all_submitted() -> bool:
            found = [await book.job(i) for i in ids]
            return all(job.task_id is not None for job in found)

        deadline = asyncio.get_running_loop().time() + 10
        while True:  # recorded as submitted (not just sent) before the death
            if await all_submitted():
                break
            assert asyncio.get_running_loop().time() < deadline, "not submitted in 10 s"
            await asyncio.sleep(0.05)
        # Released by the dispatcher that ran (the survivor's may run at the same moment):
        # the dying replica holds those it released.
        lost = set(dying.core.tracker.leases.held)
        assert lost and lost <= set(ids)
        # Death: the tracker's tasks end, its leases are not given back.
        await dying.core.tracker.stop(release=False)
        died = asyncio.get_running_loop().time()
        await until(lambda: survivor.core.tracker.leases.held >= lost, 3 * LEASE)
        took_over = asyncio.get_running_loop().time() - died
        await until(lambda: set(delivered(ports)) >= set(ids), 20)
        await asyncio.sleep(0.5)

        assert took_over <= LEASE + 1.0, took_over  # within the lease time (job_leases.py)
        assert delivered(ports) == Counter({i: 1 for i in ids})
        assert [e for e in ports[0].events if e.kind == "delivered"] == []
        assert submits(sim) == Counter({i: 1 for i in ids}), "the survivor did not resubmit"
        assert sorted(str(t.idempotency_key) for t in sim.tasks.values()) == sorted(ids)
        assert all(follows[i] == {"dying", "survivor"} for i in lost)
    print(f"takeover after {took_over:.2f} s (LEASE_SECONDS {LEASE})")


async def test_a_callback_to_the_replica_not_holding_the_job_wakes_its_holder(
    tmp_path: Path, sim: Simulator, pg_url: str
) -> None:
    sim.config.task_seconds = 120.0  # the holder's next read is far off unless woken
    async with replicas(tmp_path, sim, pg_url, ["r1", "r2"]) as (cores, ports, _f):
        service = cores[0].core.service
        job = await service.submit(USERS[0], service.parse(PROMPT), Surface())
        # Whichever replica's dispatcher released it holds it (r2's may run at that moment).
        await until(lambda: any(job.id in rc.core.tracker.leases.held for rc in cores), 10)
        mine = 0 if job.id in cores[0].core.tracker.leases.held else 1
        holder, other = cores[mine], cores[1 - mine]
        submitted = (await ports[mine].wait_for(job.id, "progress")).job
        assert submitted.task_id is not None
        assert holder.core.tracker.leases.held == {job.id} and other.core.tracker.in_flight == 0
        await asyncio.sleep(0.3)
        reads = holder.core.tracker.stats["status_reads"]
        assert reads == 0, "the holder waits before its next read"

        url = f"{other.base_url}/evolink/callback/{other.core.callback_secret}"
        async with httpx.AsyncClient() as http:
            answer = await http.post(url, json={"id": submitted.task_id})
        assert answer.status_code == 200
        sent = asyncio.get_running_loop().time()
        await until(lambda: holder.core.tracker.stats["status_reads"] > reads, 3)
        print(f"holder read the task {asyncio.get_running_loop().time() - sent:.3f} s after")
        assert other.core.tracker.stats["status_reads"] == 0
        assert ports[1 - mine].events == [], "only the holder edits the job's messages"


async def test_healthz_and_metrics_name_the_replica_its_leases_and_the_database(
    tmp_path: Path, sim: Simulator, pg_url: str
) -> None:
    sim.config.task_seconds = 60.0
    async with replicas(tmp_path, sim, pg_url, ["r1"]) as (cores, ports, _f):
        (rc,) = cores
        job = await rc.core.service.submit(USERS[0], rc.core.service.parse(PROMPT), Surface())
        await ports[0].wait_for(job.id, "progress")
        async with httpx.AsyncClient(base_url=rc.base_url) as http:
            health = (await http.get("/healthz")).json()
            metrics = (await http.get("/metrics")).text
        assert health["status"] == "ok" and health["jobs_in_flight"] == 1
        assert health["replica"] == "r1" and health["leases"] == 1
        assert health["database"] == {"engine": "postgresql", "reachable": True}
        assert {"platforms", "schema"} <= set(health)
        assert 'sora_replica_info{replica="r1"} 1' in metrics
        assert "sora_job_leases_held 1" in metrics
        assert 'sora_evolink_task_reads_total{kind="batches"}' in metrics


async def test_a_media_link_whose_file_is_on_another_disk_says_so(
    tmp_path: Path, sim: Simulator
) -> None:
    async with running_core(tmp_path, sim) as rc:
        media = rc.core.media
        elsewhere = media.url_for(media.media_dir / "j0000000000000000000000.mp4")
        assert elsewhere is not None
        async with httpx.AsyncClient() as http:
            missing = await http.get(elsewhere)
            forged = await http.get(f"{rc.base_url}/media/not-a-token")
            health = (await http.get(f"{rc.base_url}/healthz")).json()
        assert missing.status_code == 404
        assert missing.headers["Content-Type"].startswith("text/plain")
        assert "another replica" in missing.text and "MEDIA_DIR" in missing.text
        assert forged.status_code == 404 and "MEDIA_DIR" not in forged.text
        assert health["database"] == {"engine": "sqlite", "reachable": True}
        assert health["replica"] == rc.settings.replica_id and health["leases"] == 0
