"""Batch task reads (`EvoLinkClient.get_tasks`, bot/infra/task_batch.py) against the simulator's
`POST /v1/tasks/batch` over real HTTP on 127.0.0.1: at most 50 ids a request, unknown ids
absent, and single reads (same answers) when the route is missing or its answer unreadable."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from bot.domain.catalog import Catalog
from bot.domain.errors import ProviderHTTPError
from bot.domain.models import VideoRequest
from bot.infra.evolink import EvoLinkClient, TaskSnapshot
from bot.infra.simulator import Simulator, SimulatorConfig
from bot.infra.task_batch import BATCH_LIMIT, batch_items

KEY = "sk-secret-batch-key-987"
AUTH = {"Authorization": f"Bearer {KEY}"}
_SPEC = next(s for s in Catalog.load().models if s.selectable and not s.image_required)
REQUEST = VideoRequest(
    model=_SPEC.name,
    prompt="a lighthouse at dusk",
    duration=_SPEC.default_duration,
    aspect_ratio=_SPEC.default_aspect_ratio,
)


@asynccontextmanager
async def connected(
    config: SimulatorConfig | None = None,
) -> AsyncIterator[tuple[Simulator, EvoLinkClient]]:
    options: dict[str, Any] = {"backoff_base": 0.01, "max_backoff": 0.05}
    async with (
        Simulator.serve(config or SimulatorConfig(task_seconds=60)) as sim,
        EvoLinkClient(sim.base_url, KEY, **options) as client,
    ):
        yield sim, client


async def submitted(client: EvoLinkClient, count: int) -> list[str]:
    return [(await client.submit(f"job-{i}", REQUEST)).id for i in range(count)]


def unknown(count: int) -> list[str]:
    return [f"task-unified-0-unknown{i}" for i in range(count)]


async def test_120_ids_are_three_requests_and_unknown_ids_are_absent() -> None:
    async with connected() as (sim, client):
        ids = await submitted(client, 110)
        asked = ids[:60] + unknown(10) + ids[60:]  # 120 ids, 10 EvoLink does not know
        found = await client.get_tasks(asked)
        assert sim.counts["batch"] == 3 and sim.counts["task"] == 0
        assert sim.counts["batch_ids"] == 120
        assert [len(r.json["task_ids"]) for r in sim.requests if r.kind == "batch"] == [50, 50, 20]
        assert set(found) == set(ids)  # the unknown ten are absent
        for task_id, snapshot in found.items():
            single = await client.get_task(task_id)
            assert snapshot == single  # the same reading as GET /v1/tasks/{id}
        assert all(sim.task_reads[i] == 2 for i in ids)
        assert await client.get_tasks([]) == {} and sim.counts["batch"] == 3


async def test_a_batch_answer_reads_as_the_single_read_at_every_stage() -> None:
    clock = [1000.0]
    config = SimulatorConfig(task_seconds=10, fail_next=["content_policy_violation"])
    async with (
        Simulator.serve(config, clock=lambda: clock[0]) as sim,
        EvoLinkClient(sim.base_url, KEY) as client,
    ):
        ids = await submitted(client, 3)
        for step in (0.0, 3.0, 10.0):  # pending, processing, ended (one failed)
            clock[0] += step
            batch = await client.get_tasks(ids)
            assert batch == {i: await client.get_task(i) for i in ids}
        assert [batch[i].status for i in ids] == ["failed", "completed", "completed"]
        assert batch[ids[1]].results and batch[ids[1]].credits_used is not None


async def test_without_the_route_it_falls_back_once_and_remembers() -> None:
    async with connected() as (sim, with_batch):
        ids = await submitted(with_batch, 70)
        expected = await with_batch.get_tasks(ids + unknown(3))
        sim.config.batch_reads = False  # an EvoLink without the route: 404
        async with EvoLinkClient(sim.base_url, KEY, backoff_base=0.01) as client:
            before = dict(sim.counts)
            found = await client.get_tasks(ids + unknown(3))
            assert found == expected and set(found) == set(ids)
            # both chunks tried the route (in parallel), then 73 single reads
            assert sim.counts["batch"] - before["batch"] == 2
            assert sim.counts["task"] - before.get("task", 0) == 73
            assert client.batch.available is False
            again = await client.get_tasks(ids[:5])  # remembered: no batch request again
            assert set(again) == set(ids[:5])
            assert sim.counts["batch"] - before["batch"] == 2


@pytest.mark.parametrize("fault", ["malformed", "not a task list"])
async def test_an_answer_it_cannot_read_falls_back_to_single_reads(fault: str) -> None:
    async with connected() as (sim, client):
        ids = await submitted(client, 4)
        if fault == "malformed":  # a cut-off JSON body at every attempt
            sim.config.http_errors["batch"] = ["malformed"] * client.max_attempts
            tries = client.max_attempts
        else:
            sim.config.batch_key = "results"  # JSON, but no list we know: not retried
            tries = 1
        found = await client.get_tasks(ids)
        assert set(found) == set(ids)
        assert sim.counts["batch"] == tries and sim.counts["task"] == 4  # then single reads
        assert client.batch.available is False


async def test_a_body_cut_short_once_is_retried_not_given_up() -> None:
    async with connected() as (sim, client):
        ids = await submitted(client, 4)
        sim.config.http_errors["batch"] = ["malformed", "malformed"]
        assert set(await client.get_tasks(ids)) == set(ids)
        assert sim.counts["batch"] == 3 and sim.counts["task"] == 0
        assert client.batch.available is True


@pytest.mark.parametrize("key", [None, "data", "tasks", "items"])
async def test_every_answer_shape_seen_is_read(key: str | None) -> None:
    async with connected(SimulatorConfig(task_seconds=60, batch_key=key)) as (sim, client):
        ids = await submitted(client, 3)
        assert set(await client.get_tasks(ids)) == set(ids)
        assert sim.counts["task"] == 0 and client.batch.available is True
    wrapped = {"data": {"tasks": [{"id": "t", "status": "pending"}]}}
    assert batch_items(wrapped) == [{"id": "t", "status": "pending"}]
    with pytest.raises(ValueError):
        batch_items({"data": {"id": "t"}})


async def test_retryable_errors_are_retried_and_lasting_ones_raised() -> None:
    async with connected() as (sim, client):
        ids = await submitted(client, 2)
        sim.config.http_errors["batch"] = [503, 429]
        sim.config.retry_after = 0
        assert set(await client.get_tasks(ids)) == set(ids)
        assert sim.counts["batch"] == 3 and client.batch.available is True
        sim.config.http_errors["batch"] = [401]
        with pytest.raises(ProviderHTTPError) as caught:
            await client.get_tasks(ids)
        assert caught.value.status == 401 and client.batch.available is True


async def test_the_simulator_refuses_a_bad_batch_with_the_envelope() -> None:
    async with (
        connected() as (sim, client),
        httpx.AsyncClient(base_url=sim.base_url) as http,
    ):
        ids = await submitted(client, 1)
        bodies: list[Any] = [
            {"task_ids": unknown(BATCH_LIMIT + 1)},
            {"task_ids": ids[0]},
            {"ids": ids},
            [ids[0]],
        ]
        for body in bodies:
            answer = await http.post("/v1/tasks/batch", json=body, headers=AUTH)
            assert answer.status_code == 400, body
            error = answer.json()["error"]
            assert set(error) == {"code", "message", "type", "param"}
            assert (error["type"], error["param"]) == ("invalid_request_error", "task_ids")
        anonymous = await http.post("/v1/tasks/batch", json={"task_ids": ids})
        assert anonymous.status_code == 401
        ok = await http.post("/v1/tasks/batch", json={"task_ids": ids + ids}, headers=AUTH)
        (task,) = ok.json()["data"]  # asked twice, answered once
        assert TaskSnapshot.from_api(task) == await client.get_task(ids[0])
        sim.config.batch_reads = False
        gone = await http.post("/v1/tasks/batch", json={"task_ids": ids}, headers=AUTH)
        assert gone.status_code == 404


async def test_the_key_is_never_logged_or_told(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with connected(SimulatorConfig(task_seconds=60, batch_reads=False)) as (sim, client):
        ids = await submitted(client, 2)
        sim.config.http_errors["task"] = [403]
        with pytest.raises(ProviderHTTPError) as caught:
            await client.get_tasks(ids)
        assert "no batch task reads" in caplog.text  # the fallback was logged
        assert KEY not in caplog.text and KEY not in str(caught.value) and KEY not in repr(client)
        assert all(r.headers.get("Authorization") == "Bearer" for r in sim.requests)
