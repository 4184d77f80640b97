"""SoraService: everything an adapter (or the CLI) may ask of the core, in domain words.

Adapters turn platform events into these calls and render what comes back (or the `BotError`
raised) — they hold no business rule. Every call that acts on someone else's job, budget or
figures asks `bot.domain.permissions` first, scoped to the target's (platform, workspace); adapters
pass only facts about the actor (`Requester.workspace_admin`), never a decision.

Invariants:
- A refused request (InputError, BudgetError, PermissionDenied) holds nothing and sends nothing.
- `submit` returns once the job and its hold are stored; EvoLink is contacted by the tracker.
- Every admin action writes an audit row with who did it, in the same transaction as its effect.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bot.domain.catalog import Catalog
from bot.domain.chat_commands import ChatCommand, parse_chat_command, usage_text
from bot.domain.errors import InputError, JobStateError
from bot.domain.grammar import parse_request
from bot.domain.models import Balance, Job, JobStatus, Requester, Surface, VideoRequest, fmt_credits
from bot.domain.offer import Choices, Price, orderable, quote_choices, quote_request
from bot.domain.periods import Period
from bot.domain.permissions import Actor, Permissions
from bot.domain.requests import RequestOptions, remix_options, validate_request
from bot.domain.workspace_settings import EffectiveSettings
from bot.gallery.links import gallery_link_for
from bot.infra.config import Settings
from bot.infra.media import MediaHost
from bot.services.approvals import Approval
from bot.services.jobs import JobBook
from bot.services.ledger import UsageRow
from bot.services.oversight import Oversight
from bot.services.prices import PriceBook
from bot.services.reports import UsageReport, build_report
from bot.services.tracker import Tracker
from bot.services.workspace_removal import cancel_workspace_jobs

log = logging.getLogger(__name__)

MAX_ADMIN_AMOUNT = Decimal(10_000_000)


def parse_amount(text: str | Decimal | int, *, field: str = "amount") -> Decimal:
    """A credit amount typed by an admin: a non-negative number with at most 3 decimals."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InputError(f"{text!r} is not a number of credits.", field=field) from None
    if not value.is_finite() or value < 0 or value > MAX_ADMIN_AMOUNT:
        raise InputError(
            f"The {field} must be between 0 and {MAX_ADMIN_AMOUNT:,} credits.", field=field
        )
    if value != value.quantize(Decimal("0.001")):
        raise InputError(f"The {field} can have at most three decimals.", field=field)
    return value


class SoraService:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        book: JobBook,
        tracker: Tracker,
        media: MediaHost,
        oversight: Oversight,
        prices: PriceBook,
    ) -> None:
        self.settings = settings
        self.prices = prices
        self.catalog = catalog
        self.book = book
        self.tracker = tracker
        self.media = media
        self.oversight = oversight
        self.permissions = Permissions(settings.admin_ids)
        self.workspaces = book.ledger.workspace_settings

    # -- requests ----------------------------------------------------------------------------

    def parse(
        self,
        text: str,
        alongside: RequestOptions | None = None,
        *,
        requester: Requester | None = None,
    ) -> VideoRequest:
        """Text in the chat grammar, plus structured options a platform sent alongside it
        (Discord's); flags in the text and options must agree. Validated by
        `validate_request`, like every request. Without --model: the default model of the
        requester's workspace (the environment's without a requester)."""
        return parse_request(
            text,
            self.catalog,
            self._default_model(requester),
            alongside,
            own_media=self.media.signed,
        )

    def parse_command(self, text: str) -> ChatCommand:
        return parse_chat_command(text)

    def build(self, options: RequestOptions, *, requester: Requester | None = None) -> VideoRequest:
        """A request from structured values (a modal, a button's value, a remix), validated by
        `validate_request` — the same rules as typing it, the image host rule included."""
        return validate_request(
            options, self.catalog, self._default_model(requester), own_media=self.media.signed
        )

    def usage_text(self, *, requester: Requester | None = None) -> str:
        return usage_text(self.catalog, self._default_model(requester), self.prices.current)

    def _default_model(self, requester: Requester | None) -> str:
        if requester is None:
            return self.settings.default_model
        return self.default_model_for(requester.platform, requester.workspace)

    def price(self, request: VideoRequest) -> Price:
        """The request's price from the freshest EvoLink price list the bot has (with its
        `pricing_version` and the options that change it); InputError naming the available
        models when EvoLink does not offer this one."""
        return quote_request(self.catalog, self.prices.current, request)

    def quote(self, request: VideoRequest) -> Decimal:
        """The credits `submit` would hold for `request` (see `price`)."""
        return self.price(request).credits

    def orderable_models(self) -> list[str]:
        """The catalog's models EvoLink offers now, in catalog order."""
        return orderable(self.catalog, self.prices.current)

    def default_price(self, model: str, duration: int | None = None) -> Decimal | None:
        """The price of `model`'s default request (at `duration`), for menus and help; None
        when the model is unknown, not offered, or the duration is not priced."""
        spec = self.catalog.find(model)
        if spec is None:
            return None
        choices = Choices.defaults(spec, duration)
        try:
            return quote_choices(self.catalog, self.prices.current, spec, choices).credits
        except InputError:
            return None

    async def submit(
        self,
        requester: Requester,
        request: VideoRequest,
        surface: Surface,
        *,
        parent_job_id: str | None = None,
    ) -> Job:
        """Hold the quote and store the job (or raise BudgetError / AccountBalanceError); the
        tracker takes it on, at once or when the fair queue has a slot."""
        price = self.price(request)
        quote = price.credits
        await self.book.ledger.precheck(requester, quote)
        await self.oversight.check_account(requester, quote)
        job = await self.book.accept(
            requester,
            request,
            surface,
            quote,
            parent_job_id=parent_job_id,
            pricing_version=price.pricing_version,
        )
        self.oversight.guard.spent(quote)
        log.info(
            "job %s: accepted for %s, %s credits held", job.id, requester.key, fmt_credits(quote)
        )
        self.tracker.dispatch_soon()
        await self.oversight.after_spend(requester)
        return job

    # -- asking an admin ---------------------------------------------------------------------

    async def ask_admin(
        self, requester: Requester, request: VideoRequest, surface: Surface
    ) -> Approval:
        """A request that did not fit the budget goes to the admins for a decision."""
        return await self.oversight.ask(requester, request, self.quote(request), surface)

    async def decide_approval(
        self,
        approval_id: str,
        actor: Actor,
        approve: bool,
        reason: str = "",
    ) -> Approval:
        """Approve (grant exactly the price and start the job) or deny, as an admin of the
        request's workspace; exactly one decision counts — a second one raises JobStateError
        naming the first."""
        approval = await self.oversight.get(approval_id)
        who = self.permissions.require_admin(
            actor, approval.requester.platform, approval.requester.workspace
        )
        return await self.oversight.decide(approval_id, who, approve, reason[:500])

    async def get_approval(self, approval_id: str) -> Approval:
        return await self.oversight.get(approval_id)

    async def pending_approvals(
        self, actor: Actor, platform: str | None = None, workspace: str | None = None
    ) -> list[Approval]:
        """Requests waiting for a decision in (platform, workspace) — None: every one — for an
        admin of that scope (PermissionDenied otherwise)."""
        self.permissions.require_admin(actor, platform, workspace)
        waiting = await self.oversight.pending(platform)
        return [a for a in waiting if workspace is None or a.requester.workspace == workspace]

    async def save_approval_refs(self, approval_id: str, refs: dict[str, str]) -> None:
        await self.oversight.save_admin_refs(approval_id, refs)

    async def save_surface(self, job_id: str, surface: Surface) -> None:
        await self.book.save_surface(job_id, surface)

    async def get_job(self, job_id: str) -> Job:
        return await self.book.job(job_id)

    async def cancel(self, job_id: str, actor: Actor) -> Job:
        """Cancel as its requester or an admin of its workspace; the hold is released. A job
        already cancelled is refused in words ("already cancelled"), not cancelled again."""
        if not job_id.strip():
            raise InputError("Which job? Give its id: cancel <job id>.", field="job_id")
        job = await self.book.job(job_id.strip())
        who = self.permissions.require_owner_or_admin(actor, job.requester, "cancel")
        if job.status == JobStatus.CANCELLED:
            raise JobStateError(f"Job {job.id} is already cancelled; its credits were returned.")
        job = await self.book.finish_cancelled(job_id, who)
        self.tracker.wake(job_id)
        self.tracker.dispatch_soon()
        await self.tracker.tell_ending(job.id)
        return job

    async def again(self, job_id: str, actor: Requester, surface: Surface) -> Job:
        """The same request once more, as a new job of `actor`, under the same budget rules."""
        job = await self.book.job(job_id)
        self.permissions.require_same_workspace(actor, job.requester)
        return await self.submit(actor, job.request, surface, parent_job_id=job.id)

    async def remix(self, job_id: str, actor: Requester, prompt: str, surface: Surface) -> Job:
        job = await self.book.job(job_id)
        self.permissions.require_owner_or_admin(actor, job.requester, "remix")
        remix_model = self.catalog.remix_model_for(job.request.model)
        if remix_model is None:
            raise InputError(
                f"{job.request.model} videos cannot be remixed: EvoLink offers no remix model "
                "for them. Use Again, or make a new request with a new prompt.",
                field="model",
            )
        if job.status != JobStatus.DELIVERED or job.task_id is None:
            raise JobStateError("Only a delivered video can be remixed.")
        request = self.build(
            remix_options(job.request, remix_model, job.task_id, prompt), requester=actor
        )
        return await self.submit(actor, request, surface, parent_job_id=job.id)

    # -- figures -----------------------------------------------------------------------------

    async def balance(self, requester: Requester) -> Balance:
        return await self.book.ledger.balance(requester)

    async def recent_jobs(self, requester: Requester, limit: int = 10) -> list[Job]:
        return await self.book.recent_jobs(
            platform=requester.platform,
            workspace=requester.workspace,
            user=requester.user,
            limit=limit,
        )

    def period_of(self, day: dt.date | None) -> Period:
        return self.book.ledger.period_of(day)

    async def usage(
        self,
        actor: Actor,
        platform: str | None = None,
        workspace: str | None = None,
        *,
        day: dt.date | None = None,
        period: Period | None = None,
    ) -> list[UsageRow]:
        """Everyone's figures in (platform, workspace) — None: every one — for an admin of
        that scope (PermissionDenied otherwise): in `period`, else each workspace's own period
        containing `day` (default: now)."""
        self.permissions.require_admin(actor, platform, workspace)
        return await self.book.ledger.usage(
            platform=platform, workspace=workspace, day=day, period=period
        )

    async def report(
        self,
        actor: Actor,
        platform: str | None = None,
        workspace: str | None = None,
        *,
        day: dt.date | None = None,
    ) -> UsageReport:
        """The usage report (bot/services/reports.py) of the period containing `day`, for an
        admin of (platform, workspace) — PermissionDenied otherwise."""
        return await build_report(
            self, actor=actor, platform=platform, workspace=workspace, day=day
        )

    # -- admin -------------------------------------------------------------------------------

    def may_administer(self, actor: Actor) -> bool:
        """Does `actor` administer the workspace they are in? (To show admin-only views.)"""
        return self.permissions.may_administer(actor)

    # Each change returns the amount as stored (`1e3` typed → 1000), for the caller to echo.

    async def set_limit(
        self, actor: Actor, target: Requester, amount: Decimal | str, reason: str = ""
    ) -> Decimal:
        who = self.permissions.require_admin(actor, target.platform, target.workspace)
        value = parse_amount(amount, field="limit")
        await self.book.ledger.set_limit(who, target, value, reason[:500])
        return value

    async def grant(
        self,
        actor: Actor,
        target: Requester,
        amount: Decimal | str,
        reason: str = "",
    ) -> Decimal:
        who = self.permissions.require_admin(actor, target.platform, target.workspace)
        value = parse_amount(amount)
        if value == 0:
            raise InputError("A grant must be more than 0 credits.", field="amount")
        await self.book.ledger.grant(who, target, value, reason[:500])
        return value

    async def set_team_budget(
        self,
        actor: Actor,
        platform: str,
        workspace: str,
        amount: Decimal | str,
        reason: str = "",
    ) -> Decimal:
        who = self.permissions.require_admin(actor, platform, workspace)
        value = parse_amount(amount, field="team budget")
        await self.book.ledger.set_team_budget(who, platform, workspace, value, reason[:500])
        return value

    async def set_role_limit(
        self,
        actor: Actor,
        platform: str,
        workspace: str,
        role: str,
        amount: Decimal | str,
        reason: str = "",
    ) -> Decimal:
        """An allowance for everyone with a role (Discord); a user's highest role applies,
        and a user's own limit beats any role."""
        who = self.permissions.require_admin(actor, platform, workspace)
        value = parse_amount(amount, field="limit")
        await self.book.ledger.set_role_limit(who, platform, workspace, role, value, reason[:500])
        return value

    async def audit_log(self) -> list[dict[str, object]]:
        return await self.book.ledger.audit_log()

    # -- per-workspace settings (bot/services/workspace_settings.py) -----------------------------

    async def workspace_settings(
        self, actor: Actor, platform: str, workspace: str
    ) -> EffectiveSettings:
        """The workspace's settings (its own over the environment's), for its admins."""
        self.permissions.require_admin(actor, platform, workspace)
        return await self.workspaces.read(platform, workspace)

    async def change_workspace_setting(
        self, actor: Actor, platform: str, workspace: str, key: str, value: str
    ) -> EffectiveSettings:
        """Set one key from its typed text ("default": back to the environment's), with its
        audit row; InputError naming the key and what it accepts (nothing written)."""
        who = self.permissions.require_admin(actor, platform, workspace)
        return await self.workspaces.change(
            who, platform, workspace, key, value, audit=self.book.ledger.audit_in
        )

    async def workspace_removed(self, platform: str, workspace: str, reason: str) -> int:
        """The bot left the workspace: its jobs EvoLink does not have yet are cancelled
        (credits released once), the rest go on; its pending approvals are withdrawn (expired,
        untold); the ledger is kept. How many jobs were cancelled; idempotent."""
        await self.oversight.withdraw_workspace(platform, workspace)
        return await cancel_workspace_jobs(self.book, self.tracker, platform, workspace, reason)

    def default_model_for(self, platform: str, workspace: str) -> str:
        """The model a request without --model gets in that workspace."""
        return self.workspaces.cached(platform, workspace).default_model

    def admin_channel(self, platform: str, workspace: str) -> str | None:
        """Where the workspace's approval requests and alerts go (None: the admins' DMs)."""
        return self.workspaces.cached(platform, workspace).admin_channel

    async def has_history(self, platform: str, workspace: str, user: str | None = None) -> bool:
        """Has this user (None: anyone) of the workspace ever used the bot?"""
        return await self.book.ledger.has_history(platform, workspace, user)

    # -- media -------------------------------------------------------------------------------

    @property
    def media_dir(self) -> Path:
        return self.media.media_dir

    def host_file(self, path: Path, filename: str | None = None) -> str | None:
        """A signed /media link for a file in MEDIA_DIR (None without PUBLIC_BASE_URL)."""
        del filename  # the link names the stored file; kept for adapters' readability
        return self.media.url_for(path)

    async def gallery_link(self, requester: Requester) -> str:
        """A signed, single-use link to the web gallery (bot/gallery/) for `requester`, valid
        GALLERY_LINK_MINUTES; ConfigError in words when PUBLIC_BASE_URL is not set."""
        return await gallery_link_for(self.settings, self.book.store, requester)
