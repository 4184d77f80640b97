"""The one port every chat platform implements so the core can talk back to users.

The core (tracker, jobs) calls these methods; adapters render them as platform output
(Discord embeds and buttons, Slack Block Kit, console lines). No business rule lives behind
this port: by the time a method is called, the core has already decided what happened.

Invariants:
- Every call gets a fresh `Job` read from the store, including the `Surface` the adapter
  saved with `SoraService.save_surface`; an adapter keeps no state of its own that a restart
  would lose.
- `on_job_progress` is called only when progress changed, and never more often than the
  port's `progress_interval` seconds for one job — nor, with `edits_per_minute`, more often
  than the jobs followed in the job's workspace leave room for.
- `on_job_delivered` is called until it returns without raising; the core records the
  delivery right after it returns, so a successful call is not repeated — except after a crash
  in between, when the retry carries `job.delivery_attempts > 1`: the adapter then checks the
  platform for the earlier post before posting again (exactly once). An adapter that
  cannot upload the file (too big, refused) falls back to `video.best_link` itself and returns
  normally; it raises only when the platform could not be reached at all.
- `balance` in terminal events is the user's balance after the job's credits were settled.
- `on_job_failed` / `on_job_cancelled` are called once per ending, except after a crash
  between the call and its record, when the retelling carries `job.tell_attempts > 1`: the
  adapter then checks the platform for its earlier notice and does not post a new one again
  (exactly once wherever the platform lets it look: Discord reads the channel's recent
  history, Slack the job's thread). Re-rendering the job's own status message is idempotent
  and may be repeated. When the check itself fails, the adapter posts anyway (twice rather
  than never); a port that cannot look (the console) may repeat the notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.domain.models import Balance, DeliveredVideo, Job

if TYPE_CHECKING:
    from bot.services.alerts import Alert
    from bot.services.approvals import Approval


@runtime_checkable
class ChatPort(Protocol):
    """What the core needs from a chat platform."""

    #: "discord", "slack", "console": jobs with this `requester.platform` go to this port.
    platform: str
    #: Minimum seconds between two progress updates of one job.
    progress_interval: float
    #: The platform's sustained budget of message edits per minute in ONE workspace, which
    #: every job of that workspace shares (None: no such budget). The core spaces a job's
    #: progress updates out so the jobs it follows there stay within it (notices.py).
    edits_per_minute: float | None

    async def on_job_progress(self, job: Job) -> None:
        """The job's status or progress changed (submitted, percentage, delivering)."""

    async def on_job_delivered(self, job: Job, video: DeliveredVideo, balance: Balance) -> None:
        """Post the finished video: upload `video.path` if it fits, else link it."""

    async def on_job_failed(self, job: Job, reason: str, balance: Balance) -> None:
        """The job failed; `reason` is plain words; its credits were returned."""

    async def on_job_cancelled(self, job: Job, balance: Balance) -> None:
        """The job was cancelled; its credits were returned."""


@runtime_checkable
class AdminPort(Protocol):
    """Optional: what a platform that can reach its admins implements (ADMIN_CHANNEL or DMs).

    The core calls these only on ports that have them; a platform without them simply gets
    no approval requests or alerts in chat (the CLI still has them).
    """

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        """Ask the admins: who, what, price, that person's spend; Approve / Deny buttons."""

    async def on_approval_decided(self, approval: Approval) -> None:
        """Tell the requester (and update the admins' message): approved (job started),
        denied or expired."""

    async def on_admin_alert(self, alert: Alert) -> None:
        """One message to the admins (budget thresholds, account balance)."""
