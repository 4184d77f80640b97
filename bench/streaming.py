"""Streaming: a 200 MB result delivered while the bot's resident memory barely moves.

    python bench/streaming.py [--size-mb 200] [--paths core,slack]

Two processes on 127.0.0.1 so only the bot's memory is measured: this one runs the bot (core,
SQLite file, MEDIA_DIR, and for `slack` the bolt adapter); a child runs the EvoLink simulator
serving a `--size-mb` synthetic video (SimulatorConfig.video_size) and the fake Slack Web API.
Paths:
  core    the tracker downloads the result to MEDIA_DIR and hands it to a port that only
          counts (what every adapter receives: a path, never bytes);
  slack   a signed `/sora` to the real Slack adapter, which uploads the MP4 to (fake) Slack.
Memory: VmRSS sampled every 2 ms by a thread (independent of the event loop) and the kernel's
high-water mark VmHWM, reset through /proc/self/clear_refs just before the job starts.
The delivered file is checked byte for byte against what the simulator served.
Target: resident memory grows by ≤ 30 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.slack import SlackRuntime
from bench.children import spawn, stop, wait_for_stdin_eof
from bot.app import Core
from bot.domain.models import Balance, DeliveredVideo, Job, Requester, Surface
from bot.infra.simulator import Simulator, SimulatorConfig, synthetic_video_chunks
from tests.adapters.slack.fake_slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlack,
    form_headers,
    slash_command_body,
)
from tests.support import running_core

MB = 1024 * 1024


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Sampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak_kb = max(self.peak_kb, status_kb("VmRSS"))
            time.sleep(0.002)


class CountingPort:
    platform = "bench"
    progress_interval = 0.0
    edits_per_minute: float | None = None

    def __init__(self) -> None:
        self.delivered: asyncio.Future[DeliveredVideo] = asyncio.Future()

    async def on_job_progress(self, job: Job) -> None:
        pass

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        self.delivered.set_result(video)

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        self.delivered.set_exception(RuntimeError(reason))

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        self.delivered.set_exception(RuntimeError("cancelled"))


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_served(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in synthetic_video_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


async def serve_world(size: str) -> None:
    """Child: the simulator serving `size` bytes per result, and the fake Slack."""
    config = SimulatorConfig(task_seconds=1.0, video_size=int(size))
    async with FakeSlack() as fake, Simulator.serve(config) as sim:
        print(f"READY {sim.base_url} {fake.api_url}", flush=True)
        await wait_for_stdin_eof()
        uploaded = sum(len(f.data) for f in fake.shared_files)
        print(f"STATS {len(fake.shared_files)} {uploaded}", flush=True)


async def wait_delivered(core: Core, limit: float) -> Path:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        row = await core.store.fetchone(
            "SELECT status, media_path FROM jobs ORDER BY created_at DESC LIMIT 1"
        )
        if row is not None and row["status"] == "delivered":
            return Path(row["media_path"])
        if row is not None and row["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the job ended {row['status']}")
        await asyncio.sleep(0.05)
    raise TimeoutError("not delivered in time")


async def one_path(path_kind: str, size: int, sim_url: str, slack_api: str) -> list[str]:
    port = CountingPort()

    class Remote:
        base_url = sim_url

    with tempfile.TemporaryDirectory() as tmp:
        async with (
            running_core(
                Path(tmp),
                Remote(),  # type: ignore[arg-type]  # only base_url is used
                ports=[port],
                platforms=[SlackRuntime] if path_kind == "slack" else [],
                slack_bot_token=BOT_TOKEN,
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=slack_api,
                user_credits_per_period="100000",
            ) as rc,
            aiohttp.ClientSession() as http,
        ):
            if path_kind == "slack":  # warm-up: bolt's first auth.test
                await rc.core.service.balance(Requester(platform="slack", workspace="T", user="U"))
            gc.collect()
            await asyncio.sleep(0.5)
            before = status_kb("VmRSS")
            hwm_reset = reset_peak()
            sampler = Sampler()
            sampler.start()
            started = time.perf_counter()
            if path_kind == "core":
                who = Requester(platform="bench", workspace="w", user="u")
                service = rc.core.service
                await service.submit(who, service.parse("a big one --duration 8"), Surface())
                video = await asyncio.wait_for(port.delivered, 120)
                assert video.path is not None, "delivered as a link: nothing was streamed"
                media = Path(video.path)
            else:
                body = slash_command_body(
                    "a big one --duration 8",
                    response_url=f"{slack_api.removesuffix('/api/')}/response/big",
                )
                url = f"{rc.base_url}/slack/events"
                async with http.post(url, data=body.encode(), headers=form_headers(body)) as r:
                    assert r.status == 200, r.status
                media = await wait_delivered(rc.core, 120)
            elapsed = time.perf_counter() - started
            sampler.stopped.set()
            sampler.join()
            hwm = status_kb("VmHWM")
            on_disk = media.stat().st_size
            same = sha256_of_file(media) == sha256_served(size)
    peak = max(sampler.peak_kb, hwm if hwm_reset else 0)
    grew = (peak - before) / 1024
    verdict = "ok" if grew <= 30 else "MISSED"
    return [
        f"{path_kind:<6} {size / MB:>7.0f} {elapsed:>7.1f}s {size / MB / elapsed:>7.0f} "
        f"{before / 1024:>9.1f} {peak / 1024:>9.1f} {grew:>8.1f}  {verdict:<6} "
        f"{'yes' if on_disk == size and same else 'NO':>5}"
    ]


async def run(size_mb: int, paths: list[str]) -> None:
    size = size_mb * MB
    world, (sim_url, slack_api) = await spawn(__file__, "--role", "world", str(size))
    lines: list[str] = []
    try:
        for path_kind in paths:
            lines += await one_path(path_kind, size, sim_url, slack_api)
    finally:
        stats = await stop(world)
    header = (
        f"{'path':<6} {'MB':>7} {'time':>8} {'MB/s':>7} {'RSS0 MB':>9} {'peak MB':>9} "
        f"{'grew MB':>8}  {'≤30MB':<6} {'bytes':>5}"
    )
    print(header)
    print("-" * len(header))
    for line in lines:
        print(line)
    print(f"fake Slack received (files, bytes): {' '.join(stats.split()[1:])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--paths", default="core,slack")
    parser.add_argument("--role", choices=["world"], help=argparse.SUPPRESS)
    parser.add_argument("values", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "world":
        asyncio.run(serve_world(*args.values))
    else:
        asyncio.run(run(args.size_mb, args.paths.split(",")))
