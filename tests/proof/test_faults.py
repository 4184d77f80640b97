"""Faults from every outside system, through the whole bot — and what the user hears about them.

EvoLink (simulator, plus tests/proof/faultproxy.py for hangs and TCP resets): 429, 500, 502,
503, dropped connections, malformed JSON, timeouts and resets, on submit, on status reads and
on the download. Documented behaviour (bot/infra/evolink.py, bot/services/tracker.py): those are
retried —
the submit with the same Idempotency-Key, so EvoLink makes one task — and the job is delivered
once, with the right bytes and the right charge. 400/401/402/403 on submit are not retried:
the job fails at once, its hold is released and the user is told why in true words. An
expired result link fails the job with its hold released.

Discord (fake_discord knobs): 429 and 5xx on the webhook upload and the progress edits.
Slack (fake_slack knobs): rate limits on the upload steps and chat calls; uploads refused.
MEDIA_DIR full: simulated by making writes to the download's `.part` file raise
OSError(ENOSPC) (monkeypatched `Path.open`; a real tiny tmpfs cannot be mounted here).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bot.domain.models import JobStatus, Surface
from bot.infra.evolink import EvoLinkClient
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import bot_on
from tests.adapters.discord.fake_discord import FakeDiscord, RecordedRequest
from tests.adapters.discord.helpers import ALICE as D_ALICE
from tests.adapters.discord.helpers import eventually, is_upload, sora_options
from tests.adapters.slack.conftest import slack_bot_on
from tests.adapters.slack.fake_slack import FakeSlack
from tests.conftest import ALICE
from tests.proof.faultproxy import FaultProxy
from tests.support import RecordingPort, RunningCore, running_core

KEY = "sk-test-evolink-key"
WAIT = 15.0


@asynccontextmanager
async def faulty_core(
    tmp_path: Path, sim: Simulator, port: RecordingPort, **settings: Any
) -> AsyncIterator[tuple[RunningCore, FaultProxy]]:
    """A core whose EvoLink traffic (API and downloads) goes through a FaultProxy, with a
    0.5 s timeout and short backoffs so that retries take milliseconds, not seconds."""
    sim.config.retry_after = 0.1
    async with FaultProxy.serve(sim) as proxy:
        client = EvoLinkClient(
            proxy.base_url,
            KEY,
            timeout=httpx.Timeout(0.5, connect=0.5),
            backoff_base=0.05,
            max_backoff=0.2,
        )
        try:
            async with running_core(
                tmp_path, sim, evolink=client, ports=[port],
                **settings,
            ) as rc:  # fmt: skip
                yield rc, proxy
        finally:
            await client.aclose()


async def _bytes(path: str) -> bytes:
    return await asyncio.to_thread(Path(path).read_bytes)


async def _held(rc: RunningCore) -> Decimal:
    return (await rc.core.service.balance(ALICE)).held


FAULTS: list[int | str] = [429, 500, 502, 503, "disconnect", "malformed", "hang", "reset"]


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("route", ["submit", "task", "download"])
async def test_retryable_evolink_faults_twice_in_a_row_still_deliver_once(
    tmp_path: Path, sim: Simulator, route: str, fault: int | str
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, proxy):
        # The tracker's status reads are batch reads (POST /v1/tasks/batch: the simulator's
        # "batch" kind; the proxy counts every /v1/tasks/… path as "task").
        sim_route = "batch" if route == "task" else route
        if fault in ("hang", "reset"):
            proxy.faults[route] = [str(fault)] * 2
        else:
            sim.config.http_errors = {sim_route: [fault, fault]}
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        delivered = await port.wait_for(job.id, "delivered", timeout=WAIT)
        await rc.core.tracker.wait_idle(5)
        assert delivered.video is not None
        assert await _bytes(delivered.video.path) == sim.clip_of()  # whole, not a torn download
        assert not list(rc.core.media.media_dir.glob("*.part"))
        final = await service.get_job(job.id)
        assert final.status == JobStatus.DELIVERED
        assert [t.idempotency_key for t in sim.tasks.values()] == [job.id]  # one task
        assert final.charged == sim.tasks[final.task_id or ""].credits_reserved
        assert await _held(rc) == 0 and len(port.of(job.id, "delivered")) == 1
        assert port.of(job.id, "failed") == []
        injected = sim.config.http_errors.get(sim_route, []) + proxy.faults.get(route, [])
        assert injected == [], "both faults were met"


async def test_a_submit_outage_longer_than_the_clients_retries_is_waited_out(
    tmp_path: Path, sim: Simulator
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        sim.config.http_errors = {"submit": [503] * 6}  # the client gives up after 5
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        await port.wait_for(job.id, "delivered", timeout=WAIT)
        assert len(sim.tasks) == 1 and port.of(job.id, "failed") == []


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "refused the request"),
        (401, "API key was rejected"),
        (402, "out of credits"),
        (403, "refused access"),
    ],
)
async def test_final_evolink_refusals_fail_at_once_release_and_say_why(
    tmp_path: Path, sim: Simulator, status: int, words: str
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        sim.config.http_errors = {"submit": [status]}
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        failed = await port.wait_for(job.id, "failed", timeout=WAIT)
        assert words in (failed.reason or "")
        assert KEY not in (failed.reason or "")
        sent = [r.kind for r in sim.requests if r.kind not in ("credits", "pricing")]
        assert sent == ["submit"]  # not retried
        assert sim.tasks == {} and await _held(rc) == 0
        assert failed.balance is not None and failed.balance.held == 0  # the user sees it back


async def test_an_expired_result_link_fails_the_job_and_releases_the_hold(
    tmp_path: Path, sim: Simulator
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        sim.config.http_errors = {"download": [404]}
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        failed = await port.wait_for(job.id, "failed", timeout=WAIT)
        assert "could no longer be downloaded" in (failed.reason or "")
        assert await _held(rc) == 0 and port.of(job.id, "delivered") == []
        assert (await service.get_job(job.id)).charged is None


# -- a full MEDIA_DIR ------------------------------------------------------------------------


class _FullDisk:
    """Makes writes to `*.part` files under `media_dir` fail with ENOSPC while `full` is set."""

    def __init__(self, media_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.media_dir = media_dir
        self.full = True
        self.refused = 0
        real_open = Path.open
        disk = self

        def open_(path: Path, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
            handle = real_open(path, mode, *args, **kwargs)
            if (
                disk.full
                and "w" in mode
                and path.suffix == ".part"
                and (path.parent == disk.media_dir)
            ):
                return _NoSpace(handle, disk)  # type: ignore[return-value]
            return handle

        monkeypatch.setattr(Path, "open", open_)


class _NoSpace:
    def __init__(self, handle: IO[bytes], disk: _FullDisk) -> None:
        self._handle, self._disk = handle, disk

    def write(self, data: bytes) -> int:
        self._handle.write(data[: len(data) // 2])  # some of it landed, then the disk was full
        self._disk.refused += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> _NoSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


async def test_a_full_media_dir_is_waited_out_and_leaves_no_torn_files(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        disk = _FullDisk(rc.core.media.media_dir, monkeypatch)
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        async with asyncio.timeout(WAIT):
            while True:
                if disk.refused:
                    break
                await asyncio.sleep(0.05)
        assert not list(rc.core.media.media_dir.glob("*.part"))  # the torn file is gone
        assert (await service.get_job(job.id)).status == JobStatus.DELIVERING
        assert await _held(rc) > 0  # still held, not charged, not released
        disk.full = False  # space was freed
        delivered = await port.wait_for(job.id, "delivered", timeout=WAIT)
        assert delivered.video is not None and await _bytes(delivered.video.path) == sim.clip_of()
        assert len(port.of(job.id, "delivered")) == 1 and await _held(rc) == 0


async def test_a_media_dir_that_stays_full_still_gets_the_user_evolinks_link(
    tmp_path: Path, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = RecordingPort("test")
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        _FullDisk(rc.core.media.media_dir, monkeypatch)
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        told = port.wait_for(job.id, "delivered", timeout=6)
        delivered = await told
        assert delivered.video is not None and delivered.video.source_url


async def test_the_stated_expiry_of_evolinks_link_counts_from_the_tasks_completion(
    tmp_path: Path, sim: Simulator
) -> None:
    port = RecordingPort("test")
    port.fail_deliveries = 1  # the first hand-over fails; the retry comes ~2 s later
    async with faulty_core(tmp_path, sim, port) as (rc, _proxy):
        service = rc.core.service
        job = await service.submit(ALICE, service.parse("a paper boat"), Surface(channel="C"))
        delivered = await port.wait_for(job.id, "delivered", timeout=WAIT)
        row = await rc.core.store.fetchone("SELECT completed_at FROM jobs WHERE id = ?", (job.id,))
        assert row is not None and delivered.video is not None
        completed = dt.datetime.fromisoformat(row["completed_at"])
        stated = delivered.video.source_expires_at
        assert stated is not None
        assert stated - completed <= dt.timedelta(hours=24, seconds=1)


# -- the chat platforms ----------------------------------------------------------------------


async def test_discord_429_and_5xx_on_edits_and_uploads_still_deliver_one_video(
    tmp_path: Path, sim: Simulator
) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild()
        hook = r"/webhooks/\d+/itoken-\d+"
        fake.fail("PATCH", hook + r"/messages/.+", 429, retry_after=0.1)
        fake.fail("PATCH", hook + r"/messages/.+", 502, message="bad gateway")
        fake.fail("POST", hook, 500, message="internal")
        async with bot_on(fake, tmp_path, sim) as world:
            await fake.slash(
                "sora",
                sora_options("a paper boat"),
                user=D_ALICE,
                guild_id=world.guild_id,
                channel_id=world.channel_id,
            )
            upload = await fake.wait_for(is_upload, within=WAIT * 2)
            assert upload.files[0].data == sim.clip_of()

            async def recorded() -> bool:
                rows = await world.rc.core.store.fetchall("SELECT status FROM jobs")
                return [r["status"] for r in rows] == ["delivered"]

            await eventually(recorded, within=WAIT)
        uploads: list[RecordedRequest] = [r for r in fake.requests if is_upload(r)]
        assert len(uploads) == 1
        assert fake.failures == []  # every injected failure was met and survived


async def test_slack_rate_limits_on_every_step_still_deliver_one_upload(
    tmp_path: Path, sim: Simulator
) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        for method in (
            "chat.postMessage",
            "chat.update",
            "files.getUploadURLExternal",
            "files.completeUploadExternal",
        ):
            fake.rate_limit(method, times=1, retry_after=0)
        status, _ = await world.command("a paper boat")
        assert status == 200
        await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        assert [f.data for f in fake.shared_files] == [sim.clip_of()]
        limited = [c.method for c in fake.calls if c.status == 429]
        assert sorted(set(limited)) == [
            "chat.postMessage",
            "chat.update",
            "files.completeUploadExternal",
            "files.getUploadURLExternal",
        ]


async def test_slack_refusing_the_upload_without_a_public_url_gets_evolinks_link_and_expiry(
    tmp_path: Path, sim: Simulator
) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim, public=False) as world:
        fake.refuse_uploads = "file_uploads_disabled"
        await world.command("a paper boat")
        job = await world.wait_job(lambda j: j.status == JobStatus.DELIVERED)
        await world.runtime.idle()
        posts = [str(c.args.get("text", "")) for c in fake.ok_calls_to("chat.postMessage")]
        link = next(p for p in posts if "EvoLink's link works until" in p)
        assert job.result_url is not None and job.result_url in link
        assert "Slack did not take the file" in link
        assert fake.shared_files == []
