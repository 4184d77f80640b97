"""One error tree for everything the core refuses or the provider fails at.

    BotError                      anything the user should hear about, in plain words (`str(err)`)
     ├── InputError               the request is invalid; `field` names the bad option,
     │                            `valid` lists what would have been accepted
     ├── BudgetError              the quote does not fit the user's or the team's budget
     ├── PermissionDenied         the actor may not do this (admin-only, someone else's job)
     ├── NotFound                 no such thing (or not visible to the actor)
     │    ├── JobNotFound         no such job
     │    └── ApprovalNotFound    no such approval request ("Ask an admin")
     ├── JobStateError            the job (or approval) cannot do that in its state
     │                            (cancel a delivered job, decide an expired request)
     ├── ConfigError              settings are missing or wrong; names the variable
     ├── PricingError             a price cannot be worked out exactly from EvoLink's rules;
     │                            `name` is the operator, variable or model (bot/domain/pricing/)
     └── ProviderError            EvoLink said no, or could not be reached
          ├── ProviderHTTPError   an HTTP error status with EvoLink's error envelope
          │    ├── TaskNotFound   EvoLink does not know the task id (400 `invalid_task_id`,
          │    │                  404): the task is gone, reading it again will not help
          │    └── ResultExpired  the result link no longer serves the video (403/404/410;
          │                       EvoLink's links live 24 h)
          ├── TaskFailed          the task ended `failed`; `code` is EvoLink's task error code
          │                       (bot/domain/task_errors.py), raised by
          `TaskSnapshot.raise_for_failure`
          └── AccountBalanceError the EvoLink account cannot cover the request
          (bot/services/alerts.py)

Invariants: every error carries a message that is safe to show to a chat user (no secrets,
no stack traces); `retryable` is True only for failures that may succeed later without any
change to the request (429, 502, 503, network, EvoLink's "retry later" task codes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal


class BotError(Exception):
    """Base of every error the core raises on purpose; `str()` is the user-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(BotError):
    """A request is invalid. Nothing was held and nothing was sent."""

    def __init__(
        self, message: str, *, field: str | None = None, valid: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.field = field
        self.valid = tuple(valid)


class BudgetError(BotError):
    """The quote does not fit. `scope` is "user" or "team"; `available` may be negative."""

    def __init__(
        self,
        message: str,
        *,
        scope: str,
        price: Decimal,
        available: Decimal,
        resets_at: dt.datetime,
    ) -> None:
        super().__init__(message)
        self.scope = scope
        self.price = price
        self.available = available
        self.resets_at = resets_at


class PermissionDenied(BotError):
    """The actor is not allowed to do this."""


class NotFound(BotError):
    """No such thing (or not one the actor may see); a subclass says which kind."""


class JobNotFound(NotFound):
    """No job with that id."""


class ApprovalNotFound(NotFound):
    """No approval request with that id."""


class JobStateError(BotError):
    """The job is in a state where the action makes no sense."""


class ConfigError(BotError):
    """Configuration is missing or invalid."""


class PricingError(BotError):
    """The price cannot be worked out; `name` is the operator, variable, component or model
    the message names, `model_id` the model being priced (None while loading the list)."""

    def __init__(self, message: str, *, name: str | None = None, model_id: str | None = None):
        super().__init__(message)
        self.name = name
        self.model_id = model_id


class ProviderError(BotError):
    """EvoLink failed or refused. `code` is EvoLink's code (string) when known."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderHTTPError(ProviderError):
    """An HTTP error response from EvoLink (status in `status`)."""


class TaskNotFound(ProviderHTTPError):
    """EvoLink does not know this task id (`GET /v1/tasks/{id}` answered 400
    `invalid_task_id` or 404): the task is gone for good."""


class ResultExpired(ProviderHTTPError):
    """The task's result link answered 403, 404 or 410: the video can no longer be fetched."""


class TaskFailed(ProviderError):
    """A task ended in `failed` (or `cancelled`); `code` is the task error code."""


class AccountBalanceError(ProviderError):
    """The EvoLink account cannot cover this request."""
