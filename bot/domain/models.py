"""Domain types shared by the core and every adapter.

Invariants:
- Credits are `Decimal` in the core and integers of EvoLink's own base unit, the uc
  (1 credit = 10,000 uc: the price list's money objects and its rounding are in uc), in the store;
  the two are converted only by `to_uc` / `from_uc`, exact for up to four decimals. No floats.
- A `VideoRequest` is always valid for its model: it is only built by
  `bot.domain.requests.validate_request` (text reaches it through
  `bot.domain.grammar.parse_request`),
  which checks it against the catalog, or read back from a row the job book accepted. Its
  `aspect_ratio` is in the model's own spelling.
- A `Requester` is (platform, workspace, user); `workspace` is the Slack team, the Discord
  guild, or ``dm`` for a Discord direct message. `key` is ``platform:workspace:user``.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.progress import ShownProgress, shown_progress

UC_PER_CREDIT = 10_000


def to_uc(credits: Decimal | int | str) -> int:
    """Credits → integer uc, 1/10,000 credit (rounded half up at the fourth decimal)."""
    value = Decimal(str(credits)) if not isinstance(credits, Decimal) else credits
    return int((value * UC_PER_CREDIT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_uc(uc: int) -> Decimal:
    """Integer uc (1/10,000 credit) → credits, normalised (``230400`` → ``Decimal("23.04")``)."""
    value = Decimal(uc) / UC_PER_CREDIT
    normal = value.normalize()
    # normalize() turns 300 into 3E+2; keep plain notation.
    return normal.quantize(Decimal(1)) if normal == normal.to_integral() else normal


def credits_json(uc: int) -> float | int:
    """uc as a JSON number of credits (int when whole). Only for output; never for arithmetic."""
    value = from_uc(uc)
    return int(value) if value == value.to_integral() else float(value)


def fmt_credits(value: Decimal | int) -> str:
    """Human form: ``23.04``, ``300``."""
    dec = from_uc(value) if isinstance(value, int) else value
    text = f"{dec:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class JobStatus(enum.StrEnum):
    PENDING = "pending"  # accepted, credits held, not yet sent to EvoLink
    SUBMITTED = "submitted"  # EvoLink has a task
    DELIVERING = "delivering"  # the video is ready and being posted
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.CANCELLED)


class Requester(BaseModel):
    """Who asked: one user in one workspace of one platform."""

    model_config = ConfigDict(frozen=True)

    platform: str
    workspace: str
    user: str
    display_name: str | None = None
    #: Platform roles (Discord role ids) for role allowances; never stored with a job.
    roles: tuple[str, ...] = ()
    #: A platform fact set by the adapter: this person administers the workspace this event
    #: came from (Discord Manage Server, Slack admin/owner). Never stored with a job; what it
    #: allows is decided by `bot.domain.permissions`.
    workspace_admin: bool = False

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.user}"


class VideoRequest(BaseModel):
    """A validated request for one video. Build it with `validate_request`, never by hand."""

    model_config = ConfigDict(frozen=True)

    model: str
    prompt: str
    duration: int
    aspect_ratio: str
    image_url: str | None = None
    #: The second and later images, for a model that takes several (e.g. reference images).
    more_image_urls: tuple[str, ...] = ()
    remove_watermark: bool | None = None
    resize_mode: str | None = None
    base_video_task_id: str | None = None
    #: Output quality in the model's spelling (None: the model has no quality option).
    quality: str | None = None
    #: Generated audio on/off (None: the model has no audio option).
    audio: bool | None = None

    @property
    def image_urls(self) -> list[str]:
        """Every image sent, first one first (EvoLink's `image_urls`)."""
        return ([self.image_url] if self.image_url else []) + list(self.more_image_urls)

    @property
    def frame(self) -> tuple[str, str]:
        """The picture's shape under a label that fits how the model spells it (every surface
        shows it so): "Size" for pixels (1280x720 → 1280×720), "Ratio" for a ratio (16:9),
        "Frame" for anything else (a word)."""
        value = self.aspect_ratio
        width, cross, height = value.lower().partition("x")
        if cross and width.isdigit() and height.isdigit():
            return "Size", f"{width}×{height}"
        if ":" in value:
            return "Ratio", value
        return "Frame", value


class Surface(BaseModel):
    """Where a job talks back: the adapter's own references (channel, thread, message ids...).

    The core stores it with the job and hands it back unchanged in every event; only the
    adapter that wrote it reads it.
    """

    channel: str | None = None
    thread: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Job(BaseModel):
    """A job row as the core and adapters see it."""

    id: str
    requester: Requester
    request: VideoRequest
    surface: Surface
    status: JobStatus
    progress: int = 0
    task_id: str | None = None
    reserved_uc: int = 0
    charged_uc: int | None = None
    error_code: str | None = None
    error: str | None = None
    estimated_seconds: int | None = None
    result_url: str | None = None
    media_path: str | None = None
    media_size: int | None = None
    created_at: dt.datetime
    submitted_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    parent_job_id: str | None = None
    #: True while a pending job waits for a free slot (concurrency limits); `queue_position`
    #: is its 1-based place among its workspace's waiting jobs, in the order they will start.
    queued: bool = False
    queue_position: int | None = None
    #: When EvoLink reported the task completed (its result link lives 24 h from then).
    completed_at: dt.datetime | None = None
    #: How many times delivery to the platform was started. Above 1, an earlier attempt may
    #: have reached the user before a crash: the adapter checks the platform before posting.
    delivery_attempts: int = 0
    #: When the user was told of a failure or cancel (None: not yet), and how many times telling
    #: was started: above 1, a crash may have come after an earlier telling reached the user.
    told_at: dt.datetime | None = None
    tell_attempts: int = 0
    #: A moving estimate of the progress between EvoLink's reads (bot/domain/progress.py),
    #: set by the notices on the job a port is given; never stored (None: show `progress`).
    progress_estimate: int | None = None
    #: The `pricing_version` of the EvoLink price list that priced this job's hold.
    pricing_version: str | None = None
    #: When the tracker began sending this pending job to EvoLink (None: not yet, or the
    #: last attempt was refused before EvoLink took it). From then EvoLink may have the task.
    submit_started_at: dt.datetime | None = None

    @property
    def cancellable(self) -> bool:
        """Whether a cancel can still succeed: only before the job reaches EvoLink (which bills
        every task it takes and has no cancel), as the lifecycle table states. Adapters show a
        Cancel button exactly when this is true."""
        from bot.domain.lifecycle import may_move  # the table imports this module

        if not may_move(self.status, JobStatus.CANCELLED):
            return False
        return self.status != JobStatus.PENDING or self.submit_started_at is None

    @property
    def shown_progress(self) -> ShownProgress:
        """The progress a port renders: the estimate while it is ahead, else `progress`."""
        return shown_progress(self.progress, self.progress_estimate)

    @property
    def reserved(self) -> Decimal:
        return from_uc(self.reserved_uc)

    @property
    def charged(self) -> Decimal | None:
        return None if self.charged_uc is None else from_uc(self.charged_uc)

    @property
    def charge_uc(self) -> int:
        """What the job costs its requester: EvoLink's billed charge once it reported one,
        else the quote that was held. The one statement of this rule (bot/services/ledger.py)."""
        return self.reserved_uc if self.charged_uc is None else self.charged_uc

    @property
    def charge(self) -> Decimal:
        return from_uc(self.charge_uc)


class Balance(BaseModel):
    """A user's figures for the current period (credits as Decimal)."""

    requester: Requester
    period_start: dt.date
    resets_at: dt.datetime
    limit: Decimal
    granted: Decimal
    used: Decimal
    held: Decimal
    #: The part of `held` that belongs to jobs still waiting in the queue.
    queued: Decimal = Decimal(0)
    team_budget: Decimal | None = None
    team_used: Decimal | None = None
    team_held: Decimal | None = None

    @property
    def available(self) -> Decimal:
        return self.limit + self.granted - self.used - self.held

    @property
    def team_available(self) -> Decimal | None:
        if self.team_budget is None:
            return None
        return self.team_budget - (self.team_used or Decimal(0)) - (self.team_held or Decimal(0))

    @property
    def spendable(self) -> Decimal:
        """What the next request may cost: the smaller of the user's and the team's room."""
        team = self.team_available
        return self.available if team is None else min(self.available, team)


class DeliveredVideo(BaseModel):
    """A finished video, downloaded once to `path`.

    `hosted_url` is the bot's signed `/media` link (None without PUBLIC_BASE_URL);
    `source_url` is EvoLink's own link, valid until `source_expires_at`. `path` is None when
    the video could not be saved (MEDIA_DIR full): the adapter then posts `best_link`.
    """

    job_id: str
    path: str | None
    size: int
    filename: str
    hosted_url: str | None = None
    source_url: str | None = None
    source_expires_at: dt.datetime | None = None

    @property
    def best_link(self) -> str | None:
        return self.hosted_url or self.source_url
