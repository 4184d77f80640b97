"""The fair queue's hand: which waiting jobs start now, and everyone's place in line.

Invariants:
- The decision is the pure policy of bot/domain/queue.py (per-user and per-workspace
  concurrency limits — each workspace's own, from its settings, else the environment's —
  round-robin between users) over what the store says now: the jobs
  waiting, the jobs holding a slot (released or submitted) and when each user last had a job
  released (`released_at`, the round-robin's memory). Nothing is counted in memory.
- Reading, deciding and releasing are ONE transaction (`JobBook.release_fitting`; one writer
  at a time, across replicas): two replicas dispatching at once never exceed
  MAX_JOBS_PER_USER / MAX_JOBS_PER_WORKSPACE, and a job leaves the queue once. A released job
  is leased to this replica in that transaction and followed here — up to its fair share of
  the open jobs after the release (`share_of`, bot/services/job_leases.py); the others are
  released with no lease, and the next lease tick of a replica with room claims them (within
  LEASE_SECONDS / 6), so one replica's dispatch never piles a whole intake onto itself.
- One dispatch at a time in a process (a lock).
- A job whose place in line changed is shown its new place at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence

from bot.domain.queue import Waiting, plan
from bot.infra.store.job_rows import WaitingRow
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
        lease_until: Callable[[], str] | None = None,
        share_of: Callable[[int], int | None] | None = None,
    ) -> None:
        self.book = book
        self.notices = notices
        self.follow = follow
        self.max_per_user = max_per_user
        self.max_per_workspace = max_per_workspace
        self.lease_until = lease_until
        self.share_of = share_of  # this replica's fair share of N open jobs (None: no limit)
        self._lock = asyncio.Lock()

    async def dispatch(self) -> None:
        async with self._lock:
            until = self.lease_until() if self.lease_until is not None else None
            started, moved = await self.book.release_fitting(self._decide, until, self.share_of)
            for job_id in started:
                self.follow(job_id)
            for job_id in moved:
                await self.notices.progress(await self.book.job(job_id), force=True)

    def _decide(
        self,
        rows: Sequence[WaitingRow],
        in_flight: Sequence[tuple[str, str, str, int]],
        last_release: Mapping[str, str],
        caps: Mapping[str, tuple[int, int]] | None = None,
    ) -> tuple[list[str], dict[str, int]]:
        """(jobs to start, new places in line of the jobs whose place changed). `caps`:
        "platform:workspace" → (max per user, max per workspace); the policy runs once per
        workspace with its own (a user is in one workspace, so the plans are independent)."""
        users: dict[str, int] = {}
        workspaces: dict[str, int] = {}
        for platform, workspace, user, count in in_flight:
            users[f"{platform}:{workspace}:{user}"] = count
            key = f"{platform}:{workspace}"
            workspaces[key] = workspaces.get(key, 0) + count
        per_workspace: dict[str, list[Waiting]] = {}
        for r in rows:
            waiting = Waiting(r.job_id, r.platform, r.workspace, r.user, r.created_at)
            per_workspace.setdefault(waiting.workspace_key, []).append(waiting)
        before = {r.job_id: r.queue_position for r in rows}
        last = {u: dt.datetime.fromisoformat(at).timestamp() for u, at in last_release.items()}
        start: list[str] = []
        moved: dict[str, int] = {}
        for key, waiting_here in per_workspace.items():
            per_user, per_ws = (caps or {}).get(key, (self.max_per_user, self.max_per_workspace))
            decided = plan(
                waiting_here,
                users,
                workspaces,
                last,
                max_per_user=per_user,
                max_per_workspace=per_ws,
            )
            start.extend(job.job_id for job in decided.start)
            moved.update(
                (job_id, position)
                for job_id, position in decided.positions.items()
                if before.get(job_id) != position
            )
        return start, moved
