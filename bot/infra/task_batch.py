"""Reading many EvoLink tasks at once (`EvoLinkClient.get_tasks`).

EvoLink's own clients read up to 50 tasks in one `POST /v1/tasks/batch` with the body
`{"task_ids": [...]}`. The route is undocumented (seen in EvoLink's MCP client), so its answer
is read leniently: a JSON list of task objects, or an object with that list under `data`,
`tasks` or `items` (or one level deeper, under `data`), each task object shaped like
`GET /v1/tasks/{id}`'s. Ids EvoLink does not know are absent from the answer.

Invariants:
- At most `BATCH_LIMIT` ids per request; ids are asked once each, in the order given.
- The result maps each id EvoLink knows to its snapshot; an unknown id is absent, never an
  error. Only ids that were asked are kept from an answer.
- When the route is missing (404, 405, 501), answers JSON that is not a list of task objects,
  or answers what is not JSON at every attempt (a body cut short once is retried, as a single
  read's), that is remembered for the life of the client and every read from then on is a
  single `GET /v1/tasks/{id}` (unknown id: absent). A 400 falls back for that chunk only.
- Single reads, and batch requests, run at most `concurrency` at a time per client, with the
  single read's retry and error rules; the first error that survives them is raised (the
  reads still running are cancelled), so an absent id always means "unknown", never "failed".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from bot.infra.task_snapshot import TaskSnapshot

log = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_LIMIT = 50
CONCURRENCY = 8
LIST_KEYS = ("data", "tasks", "items")


class BatchUnavailable(Exception):
    """The batch route could not serve a read; `remember`: never try it again."""

    def __init__(self, why: str, *, remember: bool) -> None:
        super().__init__(why)
        self.remember = remember


def batch_items(data: Any) -> list[Any]:
    """The task objects of a batch answer; ValueError when it holds no list of them."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in LIST_KEYS:
            value = data.get(key)
            if isinstance(value, list):
                return value
        inner = data.get("data")
        if isinstance(inner, dict):
            for key in LIST_KEYS[1:]:
                if isinstance(inner.get(key), list):
                    return list(inner[key])
    raise ValueError("the batch answer holds no list of tasks")


def parse_batch(data: Any) -> list[TaskSnapshot]:
    """Every task object of a batch answer (ValueError when any one is not a task object)."""
    return [TaskSnapshot.from_api(item) for item in batch_items(data)]


class BatchReads:
    """The batch-or-single reading of one client (whether the route is known to be absent)."""

    def __init__(
        self,
        read_batch: Callable[[list[str]], Awaitable[list[TaskSnapshot]]],
        read_one: Callable[[str], Awaitable[TaskSnapshot | None]],
        *,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._read_batch = read_batch  # raises BatchUnavailable when the route cannot serve
        self._read_one = read_one  # None: EvoLink does not know the task
        self._limit = asyncio.Semaphore(max(1, concurrency))
        #: None: not tried yet; True: it answered; False: absent, single reads only.
        self.available: bool | None = None

    async def read(self, task_ids: Iterable[str]) -> dict[str, TaskSnapshot]:
        ids = list(dict.fromkeys(task_ids))
        chunks = [ids[i : i + BATCH_LIMIT] for i in range(0, len(ids), BATCH_LIMIT)]
        found: dict[str, TaskSnapshot] = {}
        for part in await _all(self._chunk(chunk) for chunk in chunks):
            found.update(part)
        return found

    async def _chunk(self, ids: list[str]) -> dict[str, TaskSnapshot]:
        if self.available is not False:
            try:
                async with self._limit:
                    snapshots = await self._read_batch(ids)
            except BatchUnavailable as why:
                if why.remember:
                    self._give_up(why)
            else:
                self.available = True
                asked = set(ids)
                return {s.id: s for s in snapshots if s.id in asked}
        singles = await _all(self._one(task_id) for task_id in ids)
        return {s.id: s for s in singles if s is not None}

    def _give_up(self, why: BatchUnavailable) -> None:
        if self.available is not False:  # said once, though chunks in flight may all fail
            log.info("EvoLink has no batch task reads (%s): reading one by one", why)
        self.available = False

    async def _one(self, task_id: str) -> TaskSnapshot | None:
        async with self._limit:
            return await self._read_one(task_id)


async def _all(reads: Iterable[Awaitable[T]]) -> list[T]:
    """Every result, in order; the first error is raised and the other reads are cancelled."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    if not tasks:
        return []
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
