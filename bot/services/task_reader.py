"""Status reads of many tasks, coalesced into EvoLink's batch reads.

Every followed job decides *when* to look at its task (bot.domain.polling, per job); this module
decides *how*: the reads asked for within `WINDOW` seconds of each other, up to `BATCH` ids, go
out as one `POST /v1/tasks/batch` (`EvoLinkClient.get_tasks`), so 2,000 jobs in flight cost tens
of requests per polling round instead of 2,000.

Invariants:
- Each `read(task_id)` gets the answer for its own id: a snapshot, or the error the single read
  would have raised. A failed batch fails every read in it with that error (the callers back
  off as they would for a single read).
- An id missing from a batch answer is not taken as "EvoLink no longer knows this task" on the
  batch's word (the route is undocumented): it is read once more on its own, and only that
  single read's `TaskNotFound` fails the job.
- A read asked for while an earlier batch is still out opens the next window at once: it never
  waits behind a slow request it is not part of.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Protocol

from bot.infra.evolink import TaskSnapshot

log = logging.getLogger(__name__)

WINDOW = 0.05  # seconds a read waits for others to share its request
BATCH = 50  # EvoLink's limit per batch read


class TaskSource(Protocol):
    async def get_task(self, task_id: str) -> TaskSnapshot: ...

    async def get_tasks(self, task_ids: list[str]) -> dict[str, TaskSnapshot]: ...


class TaskReader:
    def __init__(self, source: TaskSource, *, window: float = WINDOW, batch: int = BATCH) -> None:
        self.source = source
        self.window = window
        self.batch = batch
        self._waiting: dict[str, list[asyncio.Future[TaskSnapshot]]] = {}
        self._flusher: asyncio.Task[None] | None = None  # the open window's flush
        self._flushes: set[asyncio.Task[None]] = set()  # every flush not finished
        self.stats: Counter[str] = Counter()

    async def read(self, task_id: str) -> TaskSnapshot:
        """The task's current snapshot (raises what a single `GET /v1/tasks/{id}` would)."""
        future: asyncio.Future[TaskSnapshot] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(task_id, []).append(future)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_soon(), name="task-reader")
            self._flushes.add(self._flusher)
            self._flusher.add_done_callback(self._flushes.discard)
        return await future

    async def close(self) -> None:
        """Stop a pending flush; reads still waiting are cancelled."""
        flushes = list(self._flushes)
        for flush in flushes:
            flush.cancel()
        await asyncio.gather(*flushes, return_exceptions=True)
        self._flusher = None
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.window)
        due, self._waiting = self._waiting, {}
        self._flusher = None  # the next read opens the next window
        ids = list(due)
        chunks = [ids[i : i + self.batch] for i in range(0, len(ids), self.batch)]
        try:
            await asyncio.gather(*(self._read_chunk(chunk, due) for chunk in chunks))
        finally:  # closed mid-read: nobody is left waiting for an answer that will not come
            for futures in due.values():
                for future in futures:
                    if not future.done():
                        future.cancel()

    async def _read_chunk(
        self, ids: list[str], due: dict[str, list[asyncio.Future[TaskSnapshot]]]
    ) -> None:
        self.stats["batches"] += 1
        self.stats["ids"] += len(ids)
        try:
            found = await self.source.get_tasks(ids)
        except Exception as exc:  # every read in the batch gets what a single read would
            for task_id in ids:
                _settle(due[task_id], error=exc)
            return
        missing = [task_id for task_id in ids if task_id not in found]
        for task_id, snapshot in found.items():
            if task_id in due:
                _settle(due[task_id], snapshot=snapshot)
        if missing:
            self.stats["missing"] += len(missing)
            log.info("%d task(s) absent from a batch read: reading them one by one", len(missing))
            await asyncio.gather(*(self._read_one(task_id, due[task_id]) for task_id in missing))

    async def _read_one(self, task_id: str, futures: list[asyncio.Future[TaskSnapshot]]) -> None:
        self.stats["single"] += 1
        try:
            snapshot = await self.source.get_task(task_id)
        except Exception as exc:
            _settle(futures, error=exc)
        else:
            _settle(futures, snapshot=snapshot)


def _settle(
    futures: list[asyncio.Future[TaskSnapshot]],
    *,
    snapshot: TaskSnapshot | None = None,
    error: BaseException | None = None,
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        elif snapshot is not None:
            future.set_result(snapshot)
