"""A workspace the bot left (the Slack app uninstalled, the bot removed from a Discord guild):
its jobs that cost nothing yet are cancelled; the rest go on.

Invariants:
- Only jobs `Job.cancellable` (pending, no submit on its way: queued, or released and not yet
  sent) are cancelled, each through the job book's one cancel path (`finish_cancelled`:
  compare-and-set against the tracker's submit claim; the hold released in the same
  transaction, so exactly once). Jobs EvoLink already has finish and are kept; the ledger is
  kept. No EvoLink call is made.
- Nothing is posted to the workspace (the bot can no longer reach it): each cancelled job is
  marked told at once, so no restart's sweep tries to tell it either.
- Idempotent: a second call finds nothing cancellable and returns 0.
- The service also withdraws the workspace's pending "Ask an admin" requests (expired, untold:
  `Oversight.withdraw_workspace`), so no admin can approve a job nobody could receive.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.domain.errors import JobStateError
from bot.domain.models import JobStatus

if TYPE_CHECKING:
    from bot.services.jobs import JobBook
    from bot.services.tracker import Tracker

log = logging.getLogger(__name__)

ACTOR = "system:workspace-removed"


async def cancel_workspace_jobs(
    book: JobBook, tracker: Tracker, platform: str, workspace: str, reason: str
) -> int:
    """Cancel the workspace's cancellable jobs (module docstring); how many were cancelled."""
    cancelled = 0
    for job in await book.unfinished_jobs():
        if (job.requester.platform, job.requester.workspace) != (platform, workspace):
            continue
        if not job.cancellable:
            continue
        try:
            after = await book.finish_cancelled(job.id, ACTOR)
        except JobStateError:
            continue  # its submit started meanwhile: EvoLink renders it, it goes on
        if after.status != JobStatus.CANCELLED or after.error != f"cancelled by {ACTOR}":
            continue  # cancelled by someone else meanwhile: theirs to tell
        cancelled += 1
        await book.mark_told(job.id)
        tracker.wake(job.id)
    if cancelled:
        tracker.dispatch_soon()
    log.info(
        "%s:%s removed (%s): %d waiting job(s) cancelled, their credits released",
        platform,
        workspace,
        reason or "no reason given",
        cancelled,
    )
    return cancelled
