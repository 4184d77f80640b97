"""The HTTP server: health, callbacks (secret, forged bodies), signed media links."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import httpx
import pytest

from bot.models import JobStatus, Surface
from bot.testing import RecordingPort, RunningCore, running_core, running_simulator
from tests.conftest import ALICE


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


async def test_a_forged_callback_body_is_only_a_hint(tmp_path: Path) -> None:
    """A body claiming 'completed' with an attacker's video URL for a running task makes the
    bot re-read the task; the job stays running and nothing is downloaded from that URL."""
    port = RecordingPort("test")
    async with (
        running_simulator(task_seconds=3.0) as sim,
        running_core(tmp_path, sim, attach=lambda c, _a: c.register_port(port)) as rc,
    ):
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a forged ending"), Surface())
        await _until_submitted(rc, job.id)
        task_id = (await service.get_job(job.id)).task_id
        reads_before = sum(1 for r in sim.requests if r.kind == "task")
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
        await asyncio.sleep(0.3)
        assert sum(1 for r in sim.requests if r.kind == "task") == reads_before + 1
        current = await service.get_job(job.id)
        assert current.status == JobStatus.SUBMITTED and current.result_url is None
        delivered = await port.wait_for(job.id, "delivered", timeout=15)
        assert delivered.job.result_url is not None and "evil" not in delivered.job.result_url


async def test_the_real_callback_makes_delivery_immediate(tmp_path: Path) -> None:
    port = RecordingPort("test")
    async with (
        running_simulator(task_seconds=1.5, estimate_error=20.0) as sim,  # estimate: 30 s
        running_core(tmp_path, sim, attach=lambda c, _a: c.register_port(port)) as rc,
    ):
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a quick one"), Surface())
        started = time.monotonic()
        await port.wait_for(job.id, "delivered", timeout=10)
        elapsed = time.monotonic() - started
    assert sim.callbacks_sent, "the simulator called back"
    # polling alone would first look again after ~15 s (half the 30 s estimate, stretched)
    assert elapsed < 6, f"delivered {elapsed:.1f}s after submit"


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
    from bot.media import MediaHost

    host = MediaHost(tmp_path / "m", "secret", "https://bot.example.com", 7)
    for name in ("../x", "a/b", ".env"):
        with pytest.raises(ValueError):
            host.token_for(name)


def test_retention_removes_old_files(tmp_path: Path) -> None:
    import os

    from bot.media import MediaHost

    host = MediaHost(tmp_path / "m", "secret", None, 7)
    old, new = host.media_dir / "old.mp4", host.media_dir / "new.mp4"
    old.write_bytes(b"1")
    new.write_bytes(b"2")
    eight_days = time.time() - 8 * 86400
    os.utime(old, (eight_days, eight_days))
    assert host.cleanup() == 1
    assert not old.exists() and new.exists()
    assert host.url_for(new) is None  # no PUBLIC_BASE_URL, no link


async def _until_submitted(rc: RunningCore, job_id: str) -> None:
    async with asyncio.timeout(10):
        while (await rc.core.service.get_job(job_id)).status != JobStatus.SUBMITTED:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
