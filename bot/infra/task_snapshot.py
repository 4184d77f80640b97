"""One reading of an EvoLink task (`GET /v1/tasks/{id}`, a batch read or the submit answer),
and the account's credits: the values bot/infra/evolink.py returns.

Invariants: a task object that is not one (no id, no status) raises ValueError from
`TaskSnapshot.from_api`, so the client treats it as an answer it could not read; credits are
`Decimal`, never float; a task's failure is explained by bot/domain/task_errors.py.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from bot.domain.errors import TaskFailed
from bot.domain.task_errors import RETRY_LATER_CODES, reason_for_code
from bot.infra.task_fields import billing_of, charge_of, status_of, urls_of

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


class TaskSnapshot(BaseModel):
    """One reading of a task (`GET /v1/tasks/{id}` or the submit answer)."""

    id: str
    status: str  # pending | processing | completed | failed | cancelled
    progress: int = 0
    estimated_time: int | None = None
    results: list[str] = []
    error_code: str | None = None
    error_message: str | None = None
    #: What EvoLink says it charged for the task: `usage.credits_used`, else
    #: `usage.cost.credits`, else the `billing` object's charged amount net of its
    #: `refunded_credits` (None: EvoLink said nothing, or the charge is not settled yet).
    credits_used: Decimal | None = None
    #: `billing.charge_status` when a trusted billing object came: reserved | charged |
    #: released | unknown (None: no billing object).
    charge_status: str | None = None

    @property
    def kept(self) -> Decimal | None:
        """For a task that failed: what EvoLink kept (None or 0: nothing). A billing object
        that says `released` settles it: nothing kept, whatever else the task reports."""
        if self.charge_status == "released":
            return Decimal(0)
        return self.credits_used

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def raise_for_failure(self) -> None:
        """Raise `TaskFailed` when the task ended without a video: `failed`, `cancelled`, or
        `completed` with no result link (`generation_failed_no_content`)."""
        if self.status in ("failed", "cancelled"):
            raise failure_for(self)
        if self.status == "completed" and not self.results:
            raise TaskFailed(
                reason_for_code("generation_failed_no_content"),
                code="generation_failed_no_content",
                retryable=True,
            )

    @classmethod
    def from_api(cls, data: Any) -> TaskSnapshot:
        """Parse EvoLink's task object; raises ValueError when it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ValueError("not a task object")
        status = str(data.get("status") or "").lower()
        if not status:
            raise ValueError("task object without status")
        info, usage, error = _dict(data, "task_info"), _dict(data, "usage"), _dict(data, "error")
        billing = billing_of(data)
        return cls(
            id=data["id"],
            status=status,
            progress=min(100, max(0, _int(data.get("progress")) or 0)),
            estimated_time=_int(info.get("estimated_time")),
            results=urls_of(data.get("results")) or urls_of(data.get("result_data")),
            error_code=None if error.get("code") is None else str(error["code"]),
            error_message=None if error.get("message") is None else str(error["message"]),
            credits_used=charge_of(usage, billing),
            charge_status=None if billing is None else status_of(billing),
        )


class AccountCredits(BaseModel):
    remaining: Decimal | None
    unlimited: bool
    used: Decimal | None


def failure_for(snapshot: TaskSnapshot) -> TaskFailed:
    """The error for a task that ended `failed` (or `cancelled`), in plain words; callers
    use `TaskSnapshot.raise_for_failure`, which raises it."""
    code = snapshot.error_code
    if code is None and snapshot.status == "cancelled":
        code = "request_cancelled"
    return TaskFailed(
        reason_for_code(code),
        code=code or "unknown_error",
        retryable=(code or "unknown_error") in RETRY_LATER_CODES,
    )


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else int(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return None
