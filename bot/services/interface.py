"""The seam between the core and the chat adapters: what an adapter may ask, what it is told.

    adapter ──asks──▶ BotService           (implemented by bot.services.service.SoraService)
    adapter ◀──told── ChatPort, AdminPort  (bot/services/port.py), JobFinishedPort (here)

    entry point ──▶ PlatformFactory(PlatformHost) ──▶ PlatformRuntime ──▶ bot.bootstrap wires it

An adapter sees the core only through these types: it never holds the store, the tracker,
the job book, the ledger or the EvoLink client, so none of their invariants can be broken
from a platform's code.

Invariants:
- Every `BotService` method decides and records before it returns; the adapter renders what
  comes back, or the `BotError` raised (bot/domain/errors.py), in the user's words. A refusal
  (InputError, BudgetError, PermissionDenied, …) changed nothing.
- Who may do what is the service's decision (bot/domain/permissions.py): the adapter passes the
  actor with the facts its platform vouches for, never its own verdict.
- The core calls a port only after its decision is stored (see bot/services/port.py); a port raises
  only when its platform cannot be reached.
- A runtime's port is registered by the wiring (bot/bootstrap.py) once `start()` returned,
  before the core resumes its jobs; an adapter never registers itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from aiohttp import web

from bot.services.port import AdminPort, ChatPort

if TYPE_CHECKING:
    from bot.domain.catalog import Catalog
    from bot.domain.chat_commands import ChatCommand
    from bot.domain.models import Balance, Job, Requester, Surface, VideoRequest
    from bot.domain.permissions import Actor
    from bot.domain.requests import RequestOptions
    from bot.domain.workspace_settings import EffectiveSettings
    from bot.infra.config import Settings
    from bot.services.approvals import Approval
    from bot.services.leases import Lease
    from bot.services.ledger import UsageRow
    from bot.services.reports import UsageReport

__all__ = [
    "AckObserver",
    "AdminPort",
    "BotService",
    "ChatPort",
    "InstallRecords",
    "JobFinishedPort",
    "LeaseKeeper",
    "PlatformFactory",
    "PlatformHost",
    "PlatformRuntime",
]


class BotService(Protocol):
    """Everything an adapter may ask of the core, in domain words."""

    # -- what adapters read ------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The process's configuration (tokens, admin channel, default model…), read-only."""

    @property
    def catalog(self) -> Catalog:
        """The models the bot offers: names, durations, sizes, prices, remix partners."""

    @property
    def media_dir(self) -> Path:
        """Where an adapter may store a file it wants hosted (`host_file`)."""

    # -- requests ----------------------------------------------------------------------------

    def parse(
        self,
        text: str,
        alongside: RequestOptions | None = None,
        *,
        requester: Requester | None = None,
    ) -> VideoRequest:
        """Text in the chat grammar plus options sent alongside it; InputError names the
        field that is wrong. Without --model: the default model of the requester's workspace."""

    def parse_command(self, text: str) -> ChatCommand:
        """A chat line's command word (`credits`, `jobs`, `cancel ID`, …) and its arguments."""

    def build(self, options: RequestOptions, *, requester: Requester | None = None) -> VideoRequest:
        """A request from structured values (a modal, a button's value), under the same
        validation as typing it (no model: the requester's workspace's default model)."""

    def usage_text(self, *, requester: Requester | None = None) -> str:
        """How to ask for a video, with the catalog's models: the help an adapter shows."""

    def orderable_models(self) -> list[str]:
        """The catalog's models EvoLink's price list offers now."""
        ...

    def default_price(self, model: str, duration: int | None = None) -> Decimal | None:
        """The price of a model's default request (None: not offered or not priced)."""
        ...

    def quote(self, request: VideoRequest) -> Decimal:
        """What `request` would cost, in credits (nothing is held)."""

    async def submit(
        self,
        requester: Requester,
        request: VideoRequest,
        surface: Surface,
        *,
        parent_job_id: str | None = None,
    ) -> Job:
        """Hold the price and store the job, or raise BudgetError / AccountBalanceError; the
        job's progress and end arrive later on the platform's ChatPort."""

    async def cancel(self, job_id: str, actor: Actor) -> Job:
        """Cancel as its requester or an admin of its workspace; the hold is released."""

    async def again(self, job_id: str, actor: Requester, surface: Surface) -> Job:
        """The same request once more, as a new job of `actor`."""

    async def remix(self, job_id: str, actor: Requester, prompt: str, surface: Surface) -> Job:
        """A delivered video changed by `prompt`, as a new job of `actor`."""

    async def get_job(self, job_id: str) -> Job:
        """The job as stored now (JobNotFound otherwise)."""

    async def save_surface(self, job_id: str, surface: Surface) -> None:
        """Where the platform shows this job (channel, message ids), kept with the job so a
        restarted process finds it again."""

    # -- asking an admin ---------------------------------------------------------------------

    async def ask_admin(
        self, requester: Requester, request: VideoRequest, surface: Surface
    ) -> Approval:
        """A request refused for budget goes to the admins (AdminPort.on_approval_requested)."""

    async def decide_approval(
        self, approval_id: str, actor: Actor, approve: bool, reason: str = ""
    ) -> Approval:
        """Approve (grant the price, start the job) or deny; one decision counts, a second
        raises JobStateError naming the first. `reason` is recorded in the audit."""

    async def get_approval(self, approval_id: str) -> Approval:
        """The approval as stored now (ApprovalNotFound otherwise)."""

    async def pending_approvals(
        self, actor: Actor, platform: str | None = None, workspace: str | None = None
    ) -> list[Approval]:
        """Requests still waiting for a decision, oldest first."""

    async def save_approval_refs(self, approval_id: str, refs: dict[str, str]) -> None:
        """Where the admins' messages for an approval are, to update them after a decision."""

    # -- figures and budgets -----------------------------------------------------------------

    async def balance(self, requester: Requester) -> Balance:
        """The requester's allowance, use, holds and what is left this period."""

    async def recent_jobs(self, requester: Requester, limit: int = 10) -> list[Job]:
        """The requester's own jobs, newest first."""

    async def usage(
        self,
        actor: Actor,
        platform: str | None = None,
        workspace: str | None = None,
        *,
        day: dt.date | None = None,
    ) -> list[UsageRow]:
        """Everyone's figures in a scope, for an admin of it (PermissionDenied otherwise)."""

    async def report(
        self,
        actor: Actor,
        platform: str | None = None,
        workspace: str | None = None,
        *,
        day: dt.date | None = None,
    ) -> UsageReport:
        """The usage report of the period containing `day` (default: now), for an admin of
        the scope (PermissionDenied otherwise); render it with bot.services.reports."""

    def may_administer(self, actor: Actor) -> bool:
        """Does `actor` administer the workspace they are in? (To show admin-only views.)"""

    # Each change is audited with its `reason` and returns the amount as stored (`1e3` → 1000).

    async def set_limit(
        self, actor: Actor, target: Requester, amount: Decimal | str, reason: str = ""
    ) -> Decimal:
        """A user's limit per period (their allowance is the limit plus this period's grants)."""

    async def grant(
        self, actor: Actor, target: Requester, amount: Decimal | str, reason: str = ""
    ) -> Decimal:
        """Extra credits for this period."""

    async def set_team_budget(
        self, actor: Actor, platform: str, workspace: str, amount: Decimal | str, reason: str = ""
    ) -> Decimal:
        """A workspace's budget per period (0: no cap)."""

    async def set_role_limit(
        self,
        actor: Actor,
        platform: str,
        workspace: str,
        role: str,
        amount: Decimal | str,
        reason: str = "",
    ) -> Decimal:
        """A limit for everyone with a role (the highest applies)."""

    # -- per-workspace settings (Slack team id / Discord guild id) ------------------------------

    async def workspace_settings(
        self, actor: Actor, platform: str, workspace: str
    ) -> EffectiveSettings:
        """Every key's value in the workspace and whether it is its own (`overridden`) or the
        environment's; for admins of that workspace (PermissionDenied otherwise)."""

    async def change_workspace_setting(
        self, actor: Actor, platform: str, workspace: str, key: str, value: str
    ) -> EffectiveSettings:
        """Set `key` from the text as typed ("500", "week", "Europe/Paris", "C0123";
        "default": back to the environment's); InputError naming the key and the valid values
        (nothing written); PermissionDenied unless `actor` administers that workspace. One
        audit row per change, in the same transaction."""

    async def workspace_removed(self, platform: str, workspace: str, reason: str) -> int:
        """The app was uninstalled from / the bot removed from that workspace: its queued and
        not-yet-submitted jobs are cancelled (credits released once); how many. Jobs EvoLink
        has go on and are kept; the ledger is kept. Idempotent."""

    def default_model_for(self, platform: str, workspace: str) -> str:
        """The model a request without --model gets in that workspace."""

    def admin_channel(self, platform: str, workspace: str) -> str | None:
        """The workspace's admin channel (its setting, else the environment's
        DISCORD_/SLACK_ADMIN_CHANNEL); None: approval requests go to the admins' DMs."""

    # -- media -------------------------------------------------------------------------------

    def host_file(self, path: Path, filename: str | None = None) -> str | None:
        """A signed link to a file in `media_dir` (None when the bot has no public URL)."""

    async def gallery_link(self, requester: Requester) -> str:
        """A private, single-use link to the web gallery for `requester` (signed, valid
        GALLERY_LINK_MINUTES); ConfigError saying so when PUBLIC_BASE_URL is not set."""


@runtime_checkable
class JobFinishedPort(Protocol):
    """Optional on a ChatPort: told after a job's end is recorded — delivered and charged, or
    failed or cancelled and refunded — once the port's own notice was sent. For a port that
    waits on a job (the console's `demo -c`); platforms that only render need not have it."""

    async def on_job_finished(self, job: Job) -> None:
        """`job` is in a final state; called once per job and process, never raises back."""


class AckObserver(Protocol):
    """Where an adapter reports how long an acknowledgement took (GET /metrics)."""

    def observe_ack(self, platform: str, seconds: float) -> None:
        """`seconds` from the platform event arriving to its acknowledgement being sent."""


class LeaseKeeper(Protocol):
    """Named leases shared by every replica on the database (bot/services/leases.py): what a
    platform holds exactly once in the deployment (a Discord gateway shard)."""

    async def claim(
        self, name: str, owner: str, seconds: float, data: str | None = None
    ) -> bool: ...

    async def renew(self, name: str, owner: str, seconds: float) -> bool: ...

    async def release(self, name: str, owner: str) -> bool: ...

    async def holders(self, prefix: str = "") -> dict[str, Lease]: ...


class InstallRecords(Protocol):
    """A platform's OAuth installation rows and single-use OAuth states, in the product's store
    (bot/services/installs.py). Records are opaque text the adapter seals; keys use '' for
    "none" (no enterprise, no user)."""

    async def save(
        self, kind: str, enterprise_id: str, team_id: str, user_id: str, data_json: str
    ) -> None: ...

    async def find(
        self, kind: str, enterprise_id: str | None, team_id: str, user_id: str | None
    ) -> str | None: ...

    async def delete(
        self, kind: str | None, enterprise_id: str | None, team_id: str, user_id: str | None
    ) -> int: ...

    async def teams(self, kind: str) -> list[str]: ...

    async def issue_state(self, state: str, expires_at: str) -> None: ...

    async def consume_state(self, state: str) -> bool: ...


@dataclass(frozen=True)
class PlatformHost:
    """What a platform adapter is built with — the whole of what it gets from the core."""

    service: BotService
    #: The process's HTTP server, not started yet: add routes now (Slack's HTTP mode).
    web_app: web.Application
    acks: AckObserver
    #: Leases across the replicas (Discord holds each gateway shard by one).
    leases: LeaseKeeper
    #: OAuth installations and states (Slack's installation mode).
    installs: InstallRecords


class PlatformRuntime(Protocol):
    """One chat platform running in the process."""

    @property
    def port(self) -> ChatPort:
        """How the core talks back to this platform's users (and, if it has them, admins)."""

    @property
    def serves_http(self) -> bool:
        """True when its events arrive through the process's web server: it is closed only
        after the server has drained the requests it had received."""

    @property
    def connection(self) -> asyncio.Future[None] | None:
        """The platform connection running in the background, if any: when it ends on its
        own (a bad token, a gateway closed for good) the process stops."""

    async def start(self) -> None:
        """Log in / connect. After it returns the port can post and events may arrive."""

    async def close(self) -> None:
        """Stop taking events, let work already started finish (bounded), disconnect."""


#: Builds a platform's runtime, without I/O; the entry point chooses which ones run.
PlatformFactory = Callable[[PlatformHost], PlatformRuntime]
