"""The HTTP server: health, callbacks (secret, forged bodies), signed media links."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.domain.models import Job, JobStatus, Surface
from bot.infra.simulator import RecordedRequest, Simulator, SimulatorConfig
from tests.conftest import ALICE
from tests.support import PortEvent, RecordingPort, RunningCore, running_core, running_simulator


async def test_healthz(rc: RunningCore) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.get(rc.base_url + "/healthz")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"


async def test_callback_with_a_wrong_secret_is_404_and_changes_nothing(rc: RunningCore) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(rc.base_url + "/evolink/callback/not-the-secret", json={"id": "x"})
        assert resp.status_code == 404
        resp = await http.post(rc.base_url + "/evolink/callback/", json={"id": "x"})
        assert resp.status_code == 404


class AheadClock:
    """The simulator's clock: real time plus `ahead` seconds, so a test can move a task on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead


async def test_a_forged_callback_body_is_only_a_hint(tmp_path: Path) -> None:
    """A body claiming 'completed' with an attacker's video URL for a running task makes the
    bot re-read the task; the job stays running and nothing is downloaded from that URL."""
    port = RecordingPort("test")
    clock = AheadClock()
    async with (
        Simulator.serve(SimulatorConfig(task_seconds=30.0), clock=clock) as sim,
        running_core(tmp_path, sim, ports=[port]) as rc,
    ):
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a forged ending"), Surface())
        submitted = await port.wait_for(job.id, "progress")  # the task id is recorded
        task_id = submitted.job.task_id
        assert submitted.job.status == JobStatus.SUBMITTED and task_id is not None
        clock.ahead = 15.0  # halfway: EvoLink now says "processing, 50 %"
        seen = len(sim.requests)
        forged = {
            "id": task_id,
            "status": "completed",
            "progress": 100,
            "results": ["http://127.0.0.1:9/evil.mp4"],
        }
        url = f"{rc.base_url}/evolink/callback/{rc.core.callback_secret}"
        async with httpx.AsyncClient() as http:
            resp = await http.post(url, json=forged)
        assert resp.status_code == 200
        # The hint makes the bot read the task again, and it shows what EvoLink said there.
        await sim.wait_for_request(lambda r: _reads(r, task_id), after=seen)
        shown = await _shown(port, job.id, lambda j: j.progress > 0)
        assert shown.job.status == JobStatus.SUBMITTED and 0 < shown.job.progress < 100
        current = await service.get_job(job.id)
        assert current.status == JobStatus.SUBMITTED and current.result_url is None
        # The task really ends: EvoLink's own callback brings the real video.
        clock.ahead = 31.0
        sim.settle_due()
        delivered = await port.wait_for(job.id, "delivered", timeout=15)
        assert delivered.job.result_url == f"{sim.base_url}/files/{task_id}.mp4"


def _reads(request: RecordedRequest, task_id: str | None) -> bool:
    """Is `request` a status read of `task_id` (GET /v1/tasks/{id}, or a batch naming it)?"""
    if request.kind == "batch":
        return task_id in (request.json or {}).get("task_ids", [])
    return request.kind == "task" and request.path == f"/v1/tasks/{task_id}"


async def _shown(port: RecordingPort, job_id: str, check: Callable[[Job], bool]) -> PortEvent:
    """The first progress event of `job_id` whose job passes `check` (within 10 s)."""
    async with asyncio.timeout(10):
        while True:
            for event in port.of(job_id, "progress"):
                if check(event.job):
                    return event
            await asyncio.sleep(0.02)


async def test_the_real_callback_makes_delivery_immediate(tmp_path: Path) -> None:
    port = RecordingPort("test")
    async with (
        running_simulator(task_seconds=1.5, estimate_error=20.0) as sim,  # estimate: 30 s
        running_core(tmp_path, sim, ports=[port]) as rc,
    ):
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a quick one"), Surface())
        delivered = await port.wait_for(job.id, "delivered", timeout=10)
    assert sim.callbacks_sent, "the simulator called back"
    # Polling alone would first look after ~45 s (half the 30 s estimate, stretched because
    # callbacks are on): the one status read there was is the one the callback asked for.
    reads = [r for r in sim.requests if r.kind in ("task", "batch")]
    assert len(reads) == 1 and _reads(reads[0], delivered.job.task_id)


async def test_media_links_are_signed_and_expire(rc: RunningCore) -> None:
    media = rc.core.media
    path = media.media_dir / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"x" * 100)
    good = media.url_for(path)
    assert good is not None
    expired = media.url_for(path, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    token = good.rsplit("/", 1)[1]
    payload, signature = token.split(".")
    tampered = f"{rc.base_url}/media/{payload}.{signature[:-2]}AA"
    other_payload = media.token_for("bot.db").split(".")[0]
    swapped = f"{rc.base_url}/media/{other_payload}.{signature}"
    async with httpx.AsyncClient() as http:
        ok = await http.get(good)
        assert ok.status_code == 200 and ok.content == path.read_bytes()
        assert ok.headers["content-type"] == "video/mp4"
        for bad in (
            expired,
            tampered,
            swapped,
            rc.base_url + "/media/..%2Fbot.db",
            rc.base_url + "/media/x",
        ):
            assert bad is not None
            assert (await http.get(bad)).status_code == 404, bad


def test_media_tokens_never_name_paths_outside_the_directory(tmp_path: Path) -> None:
    from bot.infra.media import MediaHost

    host = MediaHost(tmp_path / "m", "secret", "https://bot.example.com", 7)
    for name in ("../x", "a/b", ".env"):
        with pytest.raises(ValueError):
            host.token_for(name)


def test_retention_removes_old_files(tmp_path: Path) -> None:
    import os

    from bot.infra.media import MediaHost

    host = MediaHost(tmp_path / "m", "secret", None, 7)
    old, new = host.media_dir / "old.mp4", host.media_dir / "new.mp4"
    old.write_bytes(b"1")
    new.write_bytes(b"2")
    eight_days = time.time() - 8 * 86400
    os.utime(old, (eight_days, eight_days))
    assert host.cleanup() == 1
    assert not old.exists() and new.exists()
    assert host.url_for(new) is None  # no PUBLIC_BASE_URL, no link
