"""The life of a job: which status may follow which. The one statement of that rule.

    pending ──▶ submitted ──▶ delivering ──▶ delivered      (capture what EvoLink billed)
       │            │                    └─▶ failed         (capture what EvoLink kept, if any)
       │            └──▶ failed
       └──▶ failed | cancelled                              (release the hold)

Only a job EvoLink does not have yet can be cancelled: EvoLink bills every task it takes and
has no cancel, so a `submitted` job runs (and is charged) to its end. A `pending` job whose
submit is already on its way (`Job.submit_started_at`) is no longer cancellable either
(`Job.cancellable`); the job book decides both inside one transaction.

The job book (bot/services/jobs.py) changes a status only along `TRANSITIONS`, compare-and-set on
the current status; terminal statuses have no way out.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.models import JobStatus

P, S, D = JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.DELIVERING
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    P: frozenset({S, JobStatus.FAILED, JobStatus.CANCELLED}),
    S: frozenset({D, JobStatus.FAILED}),
    D: frozenset({JobStatus.DELIVERED, JobStatus.FAILED}),
    JobStatus.DELIVERED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
OPEN = (P, S, D)
ENDED_BADLY = (JobStatus.FAILED, JobStatus.CANCELLED)  # the endings a user is told about


def sources_of(target: JobStatus) -> tuple[JobStatus, ...]:
    """The statuses from which `target` may be reached."""
    return tuple(s for s, nexts in TRANSITIONS.items() if target in nexts)


def may_move(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]
