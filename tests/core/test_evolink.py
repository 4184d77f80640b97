"""EvoLinkClient against the simulator over real HTTP on 127.0.0.1: retries, errors, downloads."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import ProviderError, ProviderHTTPError, TaskFailed
from bot.domain.models import VideoRequest
from bot.domain.offer import quote_request
from bot.domain.pricing import PriceList
from bot.domain.task_errors import RETRY_LATER_CODES, TASK_ERRORS, reason_for_code
from bot.infra.evolink import EvoLinkClient, TaskSnapshot
from bot.infra.simulator import Simulator, SimulatorConfig, clip_for, synthetic_video_chunks

KEY = "sk-secret-test-key-123"
CATALOG = Catalog.load()
# A model that takes an optional image, in a portrait ratio (the simulator is strict, as EvoLink).
SPEC = next(s for s in CATALOG.models if s.selectable and s.image_input and not s.image_required)
REQUEST = VideoRequest(
    model=SPEC.name,
    prompt="a paper boat on a rainy street",
    duration=max(SPEC.durations),
    aspect_ratio=next(r for r in SPEC.aspect_ratios if r in ("720x1280", "9:16")),
)
PRICE = quote_request(CATALOG, PriceList.load(), REQUEST).exact  # what EvoLink bills REQUEST


@asynccontextmanager
async def connected(
    config: SimulatorConfig | None = None, **client_options: Any
) -> AsyncIterator[tuple[Simulator, EvoLinkClient]]:
    async with Simulator.serve(config or SimulatorConfig(task_seconds=0.2)) as sim:
        options: dict[str, Any] = {"backoff_base": 0.01, "max_backoff": 0.05, **client_options}
        async with EvoLinkClient(sim.base_url, KEY, **options) as client:
            yield sim, client


async def until_terminal(client: EvoLinkClient, task_id: str) -> TaskSnapshot:
    async def poll() -> TaskSnapshot:
        while True:  # polling is what the tracker does too
            snapshot = await client.get_task(task_id)
            if snapshot.terminal:
                return snapshot
            await asyncio.sleep(0.03)

    return await asyncio.wait_for(poll(), 10)


async def test_submit_poll_complete_with_results_and_credits() -> None:
    request = REQUEST.model_copy(update={"image_url": "https://img.example/cat.png"})
    async with connected() as (sim, client):
        submitted = await client.submit("job-1", request, callback_url="http://127.0.0.1:9/cb")
        assert (submitted.status, submitted.progress, submitted.terminal) == ("pending", 0, False)
        assert submitted.estimated_time == 1 and submitted.results == []
        sent = sim.requests[0]
        assert sent.json == {
            "model": REQUEST.model,
            "prompt": REQUEST.prompt,
            "aspect_ratio": REQUEST.aspect_ratio,
            "duration": REQUEST.duration,
            "image_urls": ["https://img.example/cat.png"],
            "callback_url": "http://127.0.0.1:9/cb",
        }
        assert sent.headers["Idempotency-Key"] == "job-1"
        done = await until_terminal(client, submitted.id)
        assert done.status == "completed" and done.progress == 100
        assert done.results == [f"{sim.base_url}/files/{submitted.id}.mp4"]
        assert done.credits_used == PRICE  # the price list's quote of the request
        assert isinstance(done.credits_used, Decimal)
        credits = await client.credits()
        assert (credits.remaining, credits.used, credits.unlimited) == (
            SimulatorConfig().remaining_credits - PRICE,
            PRICE,
            False,
        )
        assert client.stats["submit"] == 1 and client.stats["credits"] == 1


@pytest.mark.parametrize("configured", [True, False])
async def test_the_audio_switch_goes_in_the_field_the_model_takes(configured: bool) -> None:
    """Kling v3/O3 take `sound` ("on"/"off"), others `generate_audio` (true/false): the client
    sends each model's own field, by the catalog (the packaged one until told another), and
    the simulator, as EvoLink, takes it; the other field is refused with a 400."""
    prices = PriceList.load()
    audio_models = [s for s in CATALOG.models if s.audio_option and s.selectable]
    assert {s.audio_field for s in audio_models} == {"sound", "generate_audio"}
    async with connected() as (sim, client):
        if configured:
            client.use_catalog(CATALOG)
        for spec in audio_models:
            declared = prices.model(spec.name).variables
            field = "sound" if "sound" in declared else "generate_audio"
            assert spec.audio_field == field, spec.name  # the catalog says what the rules take
            for audio in (True, False):
                request = VideoRequest(
                    model=spec.name,
                    prompt="a drum solo",
                    duration=spec.default_duration,
                    aspect_ratio=spec.default_aspect_ratio,
                    audio=audio,
                    image_url="https://example.com/first.png" if spec.image_required else None,
                )
                task = await client.submit(f"job-{spec.name}-{audio}", request)
                sent = sim.requests[-1].json
                assert sent[field] == (("on" if audio else "off") if field == "sound" else audio)
                other = "generate_audio" if field == "sound" else "sound"
                assert other not in sent
                if field in declared:  # priced by it (Seedance's audio is free: not a variable)
                    assert sim.tasks[task.id].variables[field] == sent[field]
            wrong = {"generate_audio": True} if field == "sound" else {"sound": "on"}
            body = {"model": spec.name, "prompt": "a drum solo", **wrong}
            async with httpx.AsyncClient(base_url=sim.base_url) as http:  # the other field
                refused = await http.post(
                    "/v1/videos/generations", json=body, headers={"Authorization": f"Bearer {KEY}"}
                )
            assert refused.status_code == 400  # EvoLink's envelope, naming the field
            assert refused.json()["error"]["param"] == other


async def test_same_job_submitted_twice_makes_one_task() -> None:
    async with connected() as (sim, client):
        first = await client.submit("job-7", REQUEST)
        second = await client.submit("job-7", REQUEST)
        assert first.id == second.id and len(sim.tasks) == 1


async def test_rejected_key_is_401_not_retried_and_not_leaked() -> None:
    async with Simulator.serve() as sim:
        async with EvoLinkClient(sim.base_url, "", backoff_base=0.01) as client:
            with pytest.raises(ProviderHTTPError) as caught:
                await client.submit("job-1", REQUEST)
        assert caught.value.status == 401 and not caught.value.retryable
        assert "API key was rejected" in str(caught.value)
        assert sim.counts["submit"] == 1
    async with connected(SimulatorConfig(http_errors={"task": [401]})) as (_sim, client):
        with pytest.raises(ProviderHTTPError) as caught:
            await client.get_task("task-unified-1-x")
        assert KEY not in str(caught.value) and KEY not in repr(client)


async def test_429_waits_for_retry_after_and_keeps_the_idempotency_key() -> None:
    config = SimulatorConfig(http_errors={"submit": [429]}, retry_after=1)
    async with connected(config) as (sim, client):
        started = time.monotonic()
        snapshot = await client.submit("job-42", REQUEST)
        waited = time.monotonic() - started
        assert waited >= 0.95  # max_backoff is 0.05: only Retry-After explains the wait
        assert sim.counts["submit"] == 2 and len(sim.tasks) == 1
        assert [r.headers["Idempotency-Key"] for r in sim.requests] == ["job-42", "job-42"]
        assert sim.tasks[snapshot.id].idempotency_key == "job-42"
        assert client.stats["error:429"] == 1 and client.stats["submit"] == 2


async def test_a_long_retry_after_is_handed_to_the_caller() -> None:
    config = SimulatorConfig(http_errors={"task": [429]}, retry_after=600)
    async with connected(config) as (sim, client):
        with pytest.raises(ProviderHTTPError) as caught:
            await asyncio.wait_for(client.get_task("task-unified-1-x"), 5)
        assert caught.value.retryable and caught.value.retry_after == 600
        assert sim.counts["task"] == 1


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "refused the request"),
        (402, "out of credits"),
        (403, "refused access"),
        (404, "could not find"),
        (413, "too large"),
    ],
)
async def test_client_errors_are_not_retried(status: int, words: str) -> None:
    async with connected(SimulatorConfig(http_errors={"submit": [status]})) as (sim, client):
        with pytest.raises(ProviderHTTPError) as caught:
            await client.submit("job-1", REQUEST)
        assert caught.value.status == status and not caught.value.retryable
        assert words in str(caught.value)
        assert sim.counts["submit"] == 1 and sim.tasks == {}
        assert client.stats["error:" + str(status)] == 1


async def test_real_402_and_invalid_task_id() -> None:
    config = SimulatorConfig(remaining_credits=PRICE / 2)  # too little for REQUEST
    async with connected(config) as (sim, client):
        with pytest.raises(ProviderHTTPError) as caught:
            await client.submit("job-1", REQUEST)
        assert (caught.value.status, caught.value.code) == (402, "insufficient_quota")
        with pytest.raises(ProviderHTTPError) as missing:
            await client.get_task("task-unified-0-gone")
        assert (missing.value.status, missing.value.code) == (400, "invalid_task_id")
        assert sim.counts["submit"] == 1 and sim.counts["task"] == 1


async def test_server_errors_are_retried_until_success() -> None:
    config = SimulatorConfig(http_errors={"submit": [502, 503, 500], "task": [503, 500]})
    async with connected(config) as (sim, client):
        snapshot = await client.submit("job-9", REQUEST)
        assert sim.counts["submit"] == 4 and len(sim.tasks) == 1
        assert {r.headers["Idempotency-Key"] for r in sim.requests} == {"job-9"}
        assert (await client.get_task(snapshot.id)).id == snapshot.id
        assert sim.counts["task"] == 3
        assert (
            client.stats["error:502"],
            client.stats["error:503"],
            client.stats["error:500"],
        ) == (1, 2, 2)


async def test_retries_stop_after_max_attempts() -> None:
    config = SimulatorConfig(http_errors={"credits": [503] * 10})
    async with connected(config, max_attempts=3) as (sim, client):
        with pytest.raises(ProviderHTTPError) as caught:
            await client.credits()
        assert caught.value.status == 503 and caught.value.retryable
        assert "try again" in str(caught.value)
        assert sim.counts["credits"] == 3


async def test_malformed_json_and_dropped_connections_are_survived() -> None:
    config = SimulatorConfig(
        http_errors={"submit": ["disconnect"], "task": ["malformed", "disconnect"]}
    )
    async with connected(config) as (sim, client):
        snapshot = await client.submit("job-3", REQUEST)
        assert len(sim.tasks) == 1 and sim.counts["submit"] == 2
        again = await client.get_task(snapshot.id)
        assert again.id == snapshot.id and sim.counts["task"] == 3
        assert client.stats["error:malformed"] == 1 and client.stats["error:network"] == 2


async def test_unreachable_service_is_a_retryable_provider_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with EvoLinkClient(
        f"http://127.0.0.1:{port}", KEY, max_attempts=2, backoff_base=0.01
    ) as client:
        with pytest.raises(ProviderError) as caught:
            await client.credits()
    assert caught.value.retryable and "could not reach EvoLink" in str(caught.value)
    assert client.stats["error:network"] == 2 and KEY not in str(caught.value)


async def test_every_task_error_code_fails_with_that_code() -> None:
    codes = sorted(TASK_ERRORS)
    assert len(codes) == 15
    async with connected(SimulatorConfig(task_seconds=0.2, fail_next=list(codes))) as (_, client):
        submitted = [await client.submit(f"job-{code}", REQUEST) for code in codes]
        finals = await asyncio.gather(*(until_terminal(client, s.id) for s in submitted))
    for code, final in zip(codes, finals, strict=True):
        assert (final.status, final.error_code) == ("failed", code)
        assert final.results == [] and final.kept == 0  # a failed task costs nothing
        assert final.charge_status == "released"
        with pytest.raises(TaskFailed) as caught:
            final.raise_for_failure()
        failure = caught.value
        assert failure.code == code and failure.retryable == (code in RETRY_LATER_CODES)
        assert str(failure) == reason_for_code(code) and "_" not in str(failure)
    assert reason_for_code("content_policy_violation") == (
        "EvoLink's content policy refused this prompt or image — try rephrasing"
    )
    assert reason_for_code("service_error") == "the video service had a problem — try again"
    assert "brand_new_code" in reason_for_code("brand_new_code")


def test_snapshot_reads_fields_seen_in_clients() -> None:
    snapshot = TaskSnapshot.from_api(
        {
            "id": "t1",
            "status": "COMPLETED",
            "progress": "100",
            "result_data": [{"url": "https://cdn.example/v.mp4"}],
            "usage": {"cost": {"credits": 23.04, "usd": 0.32}},
        }
    )
    assert snapshot.results == ["https://cdn.example/v.mp4"] and snapshot.terminal
    assert snapshot.credits_used == Decimal("23.04") and snapshot.progress == 100
    cancelled = TaskSnapshot.from_api({"id": "t2", "status": "cancelled"})
    with pytest.raises(TaskFailed) as caught:
        cancelled.raise_for_failure()
    assert caught.value.code == "request_cancelled"
    with pytest.raises(ValueError):
        TaskSnapshot.from_api({"status": "completed"})


async def test_download_streams_the_clip_without_the_key(tmp_path: Path) -> None:
    async with connected() as (sim, client):
        done = await until_terminal(client, (await client.submit("job-1", REQUEST)).id)
        dest = tmp_path / "out" / "video.mp4"
        size = await client.download(done.results[0], dest)
        assert (
            dest.read_bytes() == clip_for(REQUEST.aspect_ratio, REQUEST.duration)
            and size == dest.stat().st_size
        )
        assert list(dest.parent.iterdir()) == [dest]
        fetch = [r for r in sim.requests if r.kind == "download"]
        assert len(fetch) == 1 and "Authorization" not in fetch[0].headers


async def test_download_retries_a_cut_transfer_and_an_error(tmp_path: Path) -> None:
    config = SimulatorConfig(task_seconds=0.1, http_errors={"download": ["truncate", 503]})
    async with connected(config) as (sim, client):
        done = await until_terminal(client, (await client.submit("job-1", REQUEST)).id)
        dest = tmp_path / "video.mp4"
        await client.download(done.results[0], dest)
        assert dest.read_bytes() == clip_for(REQUEST.aspect_ratio, REQUEST.duration)
        assert sim.counts["download"] == 3 and client.stats["error:network"] == 1
        assert not dest.with_suffix(".mp4.part").exists()


async def test_expired_link_is_not_retried_and_leaves_nothing(tmp_path: Path) -> None:
    async with connected() as (sim, client):
        dest = tmp_path / "video.mp4"
        with pytest.raises(ProviderHTTPError) as caught:
            await client.download(f"{sim.base_url}/files/task-unified-0-gone.mp4", dest)
        assert caught.value.status == 404 and "expired" in str(caught.value)
        assert list(tmp_path.iterdir()) == []  # noqa: ASYNC240 - a tiny directory in a test
        assert sim.counts["download"] == 1


async def test_large_download_memory_stays_flat(tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    config = SimulatorConfig(task_seconds=0.1, video_size=size)
    async with connected(config) as (_sim, client):
        done = await until_terminal(client, (await client.submit("job-big", REQUEST)).id)
        dest = tmp_path / "big.mp4"
        tracemalloc.start()
        try:
            written = await asyncio.wait_for(client.download(done.results[0], dest), 30)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert written == size == dest.stat().st_size
    expected = hashlib.sha256()
    for chunk in synthetic_video_chunks(size):
        expected.update(chunk)
    assert hashlib.sha256(dest.read_bytes()).digest() == expected.digest()
    print(f"50 MiB download: tracemalloc peak {peak} bytes")
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"  # server and client together
