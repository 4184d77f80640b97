"""The fair queue: which waiting jobs may start now, and everyone else's place in line.

A job beyond the concurrency limits (MAX_JOBS_PER_USER in flight per user, MAX_JOBS_PER_WORKSPACE
per workspace) is accepted with its credits held and waits (`pending`, `queued`). "In flight"
means sent or being sent to EvoLink (`submitted`, or `pending` and released).

Invariants (pure functions, no I/O):
- Order is round-robin between users, not first come: each user's own jobs keep their order,
  and users take turns — the user with fewer jobs in flight first, then the one who started
  a job least recently. One user with fifty waiting jobs cannot starve three others.
- A job starts only if both its user and its workspace are under their limits.
- `queue_position` is the 1-based place among the same workspace's waiting jobs, in the order
  they would start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    job_id: str
    platform: str
    workspace: str
    user: str
    created_at: str

    @property
    def user_key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.user}"

    @property
    def workspace_key(self) -> str:
        return f"{self.platform}:{self.workspace}"


@dataclass(frozen=True)
class Plan:
    start: list[Waiting]
    positions: dict[str, int]  # job id → place in line, for jobs that keep waiting


def fair_order(
    waiting: Sequence[Waiting],
    in_flight: Mapping[str, int],
    last_start: Mapping[str, float],
) -> list[Waiting]:
    """Round-robin between users; within a user, oldest first."""
    per_user: dict[str, list[Waiting]] = defaultdict(list)
    for job in sorted(waiting, key=lambda w: (w.created_at, w.job_id)):
        per_user[job.user_key].append(job)
    users = sorted(
        per_user,
        key=lambda u: (
            in_flight.get(u, 0),
            last_start.get(u, float("-inf")),
            per_user[u][0].created_at,
        ),
    )
    order: list[Waiting] = []
    depth = 0
    while len(order) < len(waiting):
        for user in users:
            if depth < len(per_user[user]):
                order.append(per_user[user][depth])
        depth += 1
    return order


def plan(
    waiting: Sequence[Waiting],
    user_in_flight: Mapping[str, int],
    workspace_in_flight: Mapping[str, int],
    last_start: Mapping[str, float],
    *,
    max_per_user: int,
    max_per_workspace: int,
) -> Plan:
    users = dict(user_in_flight)
    workspaces = dict(workspace_in_flight)
    start: list[Waiting] = []
    remaining: list[Waiting] = []
    for job in fair_order(waiting, user_in_flight, last_start):
        if users.get(job.user_key, 0) < max_per_user and (
            workspaces.get(job.workspace_key, 0) < max_per_workspace
        ):
            start.append(job)
            users[job.user_key] = users.get(job.user_key, 0) + 1
            workspaces[job.workspace_key] = workspaces.get(job.workspace_key, 0) + 1
        else:
            remaining.append(job)
    positions: dict[str, int] = {}
    counters: dict[str, int] = defaultdict(int)
    for job in remaining:
        counters[job.workspace_key] += 1
        positions[job.job_id] = counters[job.workspace_key]
    return Plan(start=start, positions=positions)
