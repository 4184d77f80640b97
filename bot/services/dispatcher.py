"""The fair queue's hand: which waiting jobs start now, and everyone's place in line.

Invariants:
- The decision is the pure policy of bot/domain/queue.py (per-user and per-workspace
  concurrency limits, round-robin between users) over what the store says now: the jobs
  waiting and the jobs holding a slot (released or submitted). Nothing is counted in memory
  but the time each user last started a job (for the round-robin).
- One dispatch at a time in a process (a lock); a job leaves the queue compare-and-set
  (`release_from_queue`), so it is started once.
- A job whose place in line changed is shown its new place at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.domain.queue import Waiting, plan
from bot.services.jobs import JobBook
from bot.services.notices import Notices


class Dispatcher:
    def __init__(
        self,
        book: JobBook,
        notices: Notices,
        follow: Callable[[str], None],
        *,
        max_per_user: int,
        max_per_workspace: int,
    ) -> None:
        self.book = book
        self.notices = notices
        self.follow = follow
        self.max_per_user = max_per_user
        self.max_per_workspace = max_per_workspace
        self._lock = asyncio.Lock()
        self._last_start: dict[str, float] = {}

    async def dispatch(self) -> None:
        async with self._lock:
            rows = await self.book.waiting()
            if not rows:
                return
            users: dict[str, int] = {}
            workspaces: dict[str, int] = {}
            for platform, workspace, user, count in await self.book.in_flight_by_user():
                users[f"{platform}:{workspace}:{user}"] = count
                key = f"{platform}:{workspace}"
                workspaces[key] = workspaces.get(key, 0) + count
            waiting = [
                Waiting(r.job_id, r.platform, r.workspace, r.user, r.created_at) for r in rows
            ]
            before = {r.job_id: r.queue_position for r in rows}
            decided = plan(
                waiting,
                users,
                workspaces,
                self._last_start,
                max_per_user=self.max_per_user,
                max_per_workspace=self.max_per_workspace,
            )
            for job in decided.start:
                if await self.book.release_from_queue(job.job_id):
                    self._last_start[job.user_key] = time.monotonic()
                    self.follow(job.job_id)
            for job_id, position in decided.positions.items():
                if before.get(job_id) != position:
                    await self.book.set_queue_position(job_id, position)
                    await self.notices.progress(await self.book.job(job_id), force=True)
