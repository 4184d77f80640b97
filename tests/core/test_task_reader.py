"""Coalesced status reads (bot/services/task_reader.py): reads asked for together share one batch
request of at most 50 ids, each caller gets its own task's answer or error, and an id the batch
leaves out is confirmed by a single read before anyone is told it is gone."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.errors import ProviderError, TaskNotFound
from bot.infra.evolink import TaskSnapshot
from bot.services.task_reader import TaskReader


def snapshot(task_id: str, progress: int = 10) -> TaskSnapshot:
    return TaskSnapshot.from_api({"id": task_id, "status": "processing", "progress": progress})


class Source:
    """Records the requests a reader makes; answers from `known`."""

    def __init__(self, known: set[str], *, batch_omits: set[str] | None = None) -> None:
        self.known = known
        self.batch_omits = batch_omits or set()
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.fail_batches: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.sent = asyncio.Event()  # set when a batch request went out

    async def get_tasks(self, task_ids: list[str]) -> dict[str, TaskSnapshot]:
        self.batches.append(list(task_ids))
        self.sent.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_batches is not None:
            raise self.fail_batches
        return {t: snapshot(t) for t in task_ids if t in self.known and t not in self.batch_omits}

    async def get_task(self, task_id: str) -> TaskSnapshot:
        self.singles.append(task_id)
        if task_id not in self.known:
            raise TaskNotFound(f"task {task_id} not found")
        return snapshot(task_id, progress=42)


async def test_reads_asked_together_share_batches_of_at_most_fifty() -> None:
    ids = [f"task-{n}" for n in range(120)]
    source = Source(set(ids))
    reader = TaskReader(source)
    answers = await asyncio.gather(*(reader.read(t) for t in ids))
    assert [a.id for a in answers] == ids
    assert sorted(len(b) for b in source.batches) == [20, 50, 50]
    assert sorted(t for b in source.batches for t in b) == sorted(ids) and not source.singles


async def test_an_id_left_out_of_a_batch_is_read_alone_before_it_is_called_gone() -> None:
    source = Source({"a", "b"}, batch_omits={"b"})
    reader = TaskReader(source)
    a, b, gone = await asyncio.gather(
        reader.read("a"), reader.read("b"), reader.read("zz"), return_exceptions=True
    )
    assert isinstance(a, TaskSnapshot) and a.progress == 10
    assert isinstance(b, TaskSnapshot) and b.progress == 42  # the single read's answer
    assert isinstance(gone, TaskNotFound)
    assert sorted(source.singles) == ["b", "zz"]


async def test_a_failed_batch_fails_each_of_its_reads_with_that_error() -> None:
    source = Source({"a", "b"})
    source.fail_batches = ProviderError("EvoLink is unavailable (503)", retryable=True)
    reader = TaskReader(source)
    results = await asyncio.gather(reader.read("a"), reader.read("b"), return_exceptions=True)
    assert all(isinstance(r, ProviderError) for r in results) and not source.singles


async def test_a_read_never_waits_behind_a_batch_it_is_not_in() -> None:
    source = Source({"a", "b"})
    source.gate = asyncio.Event()
    reader = TaskReader(source)
    first = asyncio.create_task(reader.read("a"))
    await asyncio.wait_for(source.sent.wait(), timeout=5)  # the first batch is out, stuck
    source.gate = None
    second = await asyncio.wait_for(reader.read("b"), timeout=5)
    assert second.id == "b" and source.batches == [["a"], ["b"]]
    assert not first.done()
    await reader.close()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_the_same_task_read_twice_in_a_window_costs_one_id() -> None:
    source = Source({"a"})
    reader = TaskReader(source)
    one, two = await asyncio.gather(reader.read("a"), reader.read("a"))
    assert one.id == two.id == "a" and source.batches == [["a"]]
