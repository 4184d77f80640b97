"""The EvoLink simulator over real HTTP on 127.0.0.1: shapes, lifecycle, faults, callbacks.

The simulator is strict by default, as EvoLink is: every body here is one a current model takes
(a text-to-video model of the packaged catalog, at its default duration and quality), and every
expected price is that request's quote from the shipped price list (bot/domain/offer.py)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
from aiohttp import web

from bot.domain.catalog import Catalog
from bot.domain.offer import Choices, quote_choices
from bot.domain.pricing import PriceList
from bot.infra.simulator import (
    Simulator,
    SimulatorConfig,
    clip_bytes,
    clip_for,
    orientation_of,
    synthetic_video_chunks,
)

AUTH = {"Authorization": "Bearer sk-test"}
CATALOG = Catalog.load()
# A text-to-video model with landscape, portrait and square ratios (so every clip shape is seen).
SPEC = next(
    spec
    for spec in CATALOG.models
    if spec.selectable
    and not spec.image_required
    and {"16:9", "9:16", "1:1"} <= set(spec.aspect_ratios)
)
BODY: dict[str, Any] = {
    "model": SPEC.name,
    "prompt": "a paper boat",
    "aspect_ratio": "16:9",
    "duration": SPEC.default_duration,
    **({"quality": SPEC.default_quality} if SPEC.default_quality else {}),
}
# What EvoLink reserves (and, completed, charges) for BODY: its quote by the shipped rules.
PRICE = quote_choices(CATALOG, PriceList.load(), SPEC, Choices.defaults(SPEC)).exact


def credits(value: Any) -> Decimal:
    """A JSON credit figure as the exact decimal it prints as."""
    return Decimal(str(value))


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def submit(http: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    headers = {**AUTH, **extra.pop("headers", {})}
    return await http.post("/v1/videos/generations", json={**BODY, **extra}, headers=headers)


async def test_submit_answers_the_documented_task_object() -> None:
    async with (
        Simulator.serve(SimulatorConfig(task_seconds=300)) as sim,
        httpx.AsyncClient(base_url=sim.base_url) as http,
    ):
        response = await submit(http)
        assert response.status_code == 200
        task = response.json()
        assert set(task) == {
            "created",
            "id",
            "model",
            "object",
            "progress",
            "status",
            "task_info",
            "type",
            "usage",
            "billing",  # strict, as EvoLink: its clients read it
        }
        assert re.fullmatch(r"task-unified-\d{10}-[0-9a-f]{8}", task["id"])
        assert abs(task["created"] - time.time()) < 5
        assert (task["object"], task["status"], task["progress"], task["type"]) == (
            "video.generation.task",
            "pending",
            0,
            "video",
        )
        assert task["task_info"] == {
            "can_cancel": True,
            "estimated_time": 300,
            "video_duration": BODY["duration"],
        }
        assert task["usage"] == {
            "billing_rule": "per_call",
            "credits_reserved": float(PRICE),
            "user_group": "default",
        }
        assert credits(task["usage"]["credits_reserved"]) == PRICE
        assert task["billing"]["charge_status"] == "reserved"
        recorded = sim.requests[-1]
        assert recorded.json == BODY and recorded.headers["Authorization"] == "Bearer"


async def test_lifecycle_follows_the_clock_and_progress_never_drops() -> None:
    clock = ManualClock()
    config = SimulatorConfig(task_seconds=100, progress_noise=True, estimate_error=1.5)
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        task_id = (await submit(http)).json()["id"]
        seen: list[tuple[str, int]] = []
        for _ in range(101):
            body = (await http.get(f"/v1/tasks/{task_id}")).json()
            seen.append((body["status"], body["progress"]))
            assert body["task_info"]["estimated_time"] == 150
            clock.now += 1.0
        statuses = [s for s, _ in seen]
        assert statuses[0] == "pending" and statuses[-1] == "completed"
        assert statuses.index("processing") == 10
        assert statuses.index("completed") == 100
        progress = [p for _, p in seen]
        assert progress == sorted(progress) and progress[-1] == 100
        assert body["results"] == [f"{sim.base_url}/files/{task_id}.mp4"]
        assert credits(body["usage"]["credits_used"]) == PRICE
        missing = await http.get("/v1/tasks/task-unified-0-nothing")
        assert missing.status_code == 400
        assert missing.json()["error"]["code"] == "invalid_task_id"


async def test_missing_or_empty_key_gets_401_envelope() -> None:
    async with Simulator.serve() as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
            response = await http.post("/v1/videos/generations", json=BODY, headers=headers)
            assert response.status_code == 401
            error = response.json()["error"]
            assert set(error) == {"code", "message", "type", "param"}
        assert (await http.get("/v1/credits")).status_code == 401
        assert sim.tasks == {}


async def test_bad_input_is_refused_with_400() -> None:
    config = SimulatorConfig(models=frozenset({SPEC.name}))
    async with Simulator.serve(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"prompt": "  "}, "prompt"),
            ({"model": "nope"}, "model"),
            ({"model": "sora-2"}, "model"),  # retired: no longer on the price list
            ({"duration": max(SPEC.durations) + 1}, "duration"),
            ({"callback_url": "http://example.com/cb"}, "callback_url"),
            ({"image_urls": ["a", "b"]}, "image_urls"),
            ({"duration": "ten"}, "duration"),
        ]
        for extra, param in cases:
            response = await submit(http, **extra)
            assert response.status_code == 400, extra
            assert response.json()["error"]["param"] == param
        ok = await submit(http, callback_url="http://127.0.0.1:9/cb")
        assert ok.status_code == 200
        assert len(sim.tasks) == 1


async def test_idempotency_key_replays_the_same_task() -> None:
    async with Simulator.serve() as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        first = await submit(http, headers={"Idempotency-Key": "job-1"})
        again = await submit(http, headers={"Idempotency-Key": "job-1"})
        other = await submit(http, headers={"Idempotency-Key": "job-2"})
        assert first.json()["id"] == again.json()["id"] != other.json()["id"]
        assert "idempotency-replayed" not in first.headers
        assert again.headers["idempotency-replayed"] == "true"
        assert len(sim.tasks) == 2 and sim.counts["submit"] == 3


async def test_credits_are_reserved_then_charged_and_402_when_short() -> None:
    clock = ManualClock()
    balance = PRICE * 3 / 2  # room for one task, not two
    config = SimulatorConfig(task_seconds=0.2, remaining_credits=balance)
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        assert (await submit(http)).status_code == 200  # PRICE reserved
        short = await submit(http)
        assert short.status_code == 402
        assert short.json()["error"]["code"] == "insufficient_quota"
        clock.now += 1  # past the task's end: reading the credits settles what is due
        token = (await http.get("/v1/credits")).json()["data"]["token"]
        assert token["unlimited_credits"] is False
        assert credits(token["remaining_credits"]) == balance - PRICE
        assert credits(token["used_credits"]) == PRICE


async def test_files_match_orientation_and_wait_for_completion() -> None:
    clock = ManualClock()
    async with (
        Simulator.serve(SimulatorConfig(task_seconds=10), clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        ids = {ar: (await submit(http, aspect_ratio=ar)).json()["id"] for ar in SPEC.aspect_ratios}
        assert {orientation_of(ar) for ar in ids} == {"landscape", "portrait", "square"}
        early = await http.get(f"/files/{ids['16:9']}.mp4")
        assert early.status_code == 404
        clock.now += 10
        for ar, task_id in ids.items():
            url = (await http.get(f"/v1/tasks/{task_id}")).json()["results"][0]
            video = await http.get(url)
            assert video.headers["content-type"] == "video/mp4"
            assert video.content == clip_for(ar, BODY["duration"])
    assert orientation_of("9:16") == "portrait" and orientation_of(None) == "landscape"
    assert orientation_of("720x1280") == "portrait" and orientation_of("1280x720") == "landscape"
    assert clip_bytes("portrait")[4:8] == b"ftyp"


async def test_task_failures_from_config_and_prompt() -> None:
    clock = ManualClock()
    config = SimulatorConfig(task_seconds=0.2, fail_next=["content_policy_violation"])
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        first = (await submit(http)).json()["id"]
        second = (await submit(http, prompt="boom [[fail:upstream_error]]")).json()["id"]
        fine = (await submit(http)).json()["id"]
        clock.now += 1  # past every task's end
        bodies = [(await http.get(f"/v1/tasks/{i}")).json() for i in (first, second, fine)]
        assert [b["status"] for b in bodies] == ["failed", "failed", "completed"]
        assert bodies[0]["error"]["code"] == "content_policy_violation"
        assert bodies[1]["error"]["code"] == "upstream_error"
        assert "results" not in bodies[0] and "credits_used" not in bodies[0]["usage"]
        token = (await http.get("/v1/credits")).json()["data"]["token"]
        assert credits(token["used_credits"]) == PRICE  # only the completed one is charged


async def test_injected_http_faults_are_consumed_in_order() -> None:
    config = SimulatorConfig(
        http_errors={"credits": [429, 503, "malformed", "disconnect"]}, retry_after=7
    )
    async with (
        Simulator.serve(config) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        limited = await http.get("/v1/credits")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert (await http.get("/v1/credits")).status_code == 503
        assert (await http.get("/v1/credits")).text == '{"id": "task-unified-'
        try:
            await http.get("/v1/credits")
            raise AssertionError("the connection should have been dropped")
        except httpx.TransportError:
            pass
        assert (await http.get("/v1/credits")).json()["success"] is True
        assert sim.counts["credits"] == 5


async def callback_receiver(statuses: list[int]) -> tuple[web.AppRunner, str, list[Any]]:
    """A local endpoint answering `statuses` in turn (then 200), recording bodies."""
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=statuses.pop(0) if statuses else 200)

    app = web.Application()
    app.router.add_post("/cb", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/cb", received


async def test_callbacks_are_sent_once_settled_and_retried_on_500() -> None:
    runner, url, received = await callback_receiver([500, 500])
    config = SimulatorConfig(task_seconds=0.2, callback_backoff=0.05)
    try:
        async with (
            Simulator.serve(config) as sim,
            httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
        ):
            task_id = (await submit(http, callback_url=url)).json()["id"]
            await asyncio.wait_for(
                _until(lambda: any(a.status == 200 for a in sim.callbacks_sent)), 5
            )
            assert [a.status for a in sim.callbacks_sent] == [500, 500, 200]
            assert [a.attempt for a in sim.callbacks_sent] == [1, 2, 3]
            assert len(received) == 3
            assert all(b["id"] == task_id and b["status"] == "completed" for b in received)
            assert received[0]["results"] == [f"{sim.base_url}/files/{task_id}.mp4"]
            assert sim.counts["task"] == 0  # the timer settled it; nobody polled
    finally:
        await runner.cleanup()


async def test_callbacks_give_up_after_three_retries() -> None:
    runner, url, received = await callback_receiver([503] * 10)
    config = SimulatorConfig(task_seconds=0.1, callback_backoff=0.02, fail_next=["service_error"])
    try:
        async with (
            Simulator.serve(config) as sim,
            httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
        ):
            await submit(http, callback_url=url)
            # Settling the task starts its callback; then wait for that to end (given up).
            await asyncio.wait_for(_until(lambda: all(t.settled for t in sim.tasks.values())), 5)
            await sim.wait_callbacks(5)
            assert len(sim.callbacks_sent) == 4 and len(received) == 4
            assert received[0]["status"] == "failed"
    finally:
        await runner.cleanup()


async def _until(predicate: Callable[[], bool]) -> None:
    while True:  # the simulator exposes plain lists: look at them every few ms
        if predicate():
            return
        await asyncio.sleep(0.02)


async def test_cancel_and_time_scale() -> None:
    runner, url, received = await callback_receiver([])
    # The clock runs 50x faster than real time: a 10 s task is done in 0.2 s.
    start = time.monotonic()
    config = SimulatorConfig(task_seconds=10)
    try:
        async with (
            Simulator.serve(
                config, clock=lambda: start + (time.monotonic() - start) * 50, time_scale=50
            ) as sim,
            httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
        ):
            keep = (await submit(http, callback_url=url)).json()["id"]
            drop = (await submit(http, callback_url=url)).json()["id"]
            sim.cancel_task(drop)
            await asyncio.wait_for(_until(lambda: len(received) == 2), 5)
            assert {b["id"]: b["status"] for b in received} == {
                drop: "cancelled",
                keep: "completed",
            }
            cancelled = (await http.get(f"/v1/tasks/{drop}")).json()
            assert cancelled["error"]["code"] == "request_cancelled"
    finally:
        await runner.cleanup()


async def test_thousand_tasks_are_cheap() -> None:
    clock = ManualClock()
    config = SimulatorConfig(task_seconds=0.5, progress_noise=True, unlimited_credits=True)
    async with (
        Simulator.serve(config, clock=clock) as sim,
        httpx.AsyncClient(base_url=sim.base_url, headers=AUTH) as http,
    ):
        started = time.perf_counter()
        statuses: set[int] = set()

        async def worker() -> None:  # 20 connections; httpx queues badly beyond its pool
            for _ in range(50):
                statuses.add((await submit(http)).status_code)

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(20))), 30)
        assert statuses == {200} and len(sim.tasks) == 1000
        clock.now += 1  # past every task's end: reading the credits settles them all
        token = (await http.get("/v1/credits")).json()["data"]["token"]
        assert credits(token["used_credits"]) == PRICE * 1000
        assert all(sim.state(t)[0] == "completed" and t.settled for t in sim.tasks.values())
        assert time.perf_counter() - started < 20


def test_synthetic_chunks_have_exact_size() -> None:
    sizes = [len(c) for c in synthetic_video_chunks(200_000, chunk_size=65_536)]
    assert sum(sizes) == 200_000 and max(sizes) == 65_536
