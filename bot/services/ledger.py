"""The money owner: every credit figure, every ledger entry and the arithmetic between them.

Entries (table `ledger`, amounts in integer uc, 1/10,000 credit; SQL in
bot/infra/store/ledger_rows.py):
    hold     on accepting a job: the quote                (amount = quote)
    capture  on delivery: what EvoLink billed             (amount = charge, settles = the hold)
             (also a failed task EvoLink kept a charge for: amount = what it kept)
    release  on failure or cancel: the hold given back    (amount = 0,      settles = the hold)
    grant    an admin adds credits for the period          (amount = credits)

Invariants:
- Every hold is settled at most once (a unique index on the settling entries' job id) and a
  terminal job's hold is always settled: `held` counts only unsettled holds.
- For a user in a period:  available = limit + granted − used − held, where used = Σ capture,
  held = Σ hold − Σ settles. For a workspace with a team budget: available = budget − used − held
  over all its users. A period's figures are sums over entries carrying that `period_start`
  (an entry counts in the period its job was accepted in), so a new period needs no reset job.
- Admission, balances and alerts read those sums from the running totals (`ledger_totals`, one
  row per user and one per workspace and period, updated with each entry in its transaction),
  so their cost does not grow with the period's history; the entries stay the truth, and
  `verify` (`sora-bot admin verify`, bot/services/totals.py) recomputes every total from them.
  `usage`, `totals` and the mismatch counts still sum entries (occasional reads).
- `hold_in` runs inside the caller's write transaction (serialised: bot/infra/store/engine.py)
  and either writes the hold or raises `BudgetError`: two concurrent requests can never both
  spend the same credits.
- What a delivered job costs is `Job.charge`: EvoLink's billed charge when it reported one,
  else the quote. Every admin change of money (limits, grants, budgets) writes its audit row in
  the same transaction.
- Reports, metrics, alerts and adapters read figures from here; nothing else sums entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.catalog import Catalog
from bot.domain.errors import BudgetError
from bot.domain.models import Balance, Job, Requester, fmt_credits, from_uc, to_uc
from bot.domain.periods import Period, period_containing, period_for
from bot.domain.workspace_settings import EffectiveSettings
from bot.infra.config import Settings
from bot.infra.store import Store, Tx
from bot.infra.store import job_rows as jobs_sql
from bot.infra.store import ledger_rows as sql
from bot.services.ledger_reads import (
    MISMATCH_PER_MILLE,
    MISMATCH_TOLERANCE_UC,
    ChargeMismatches,
    CreditTotals,
    LedgerReads,
    UsageRow,
)
from bot.services.workspace_settings import EnvDefaults, WorkspaceSettings

TEAM = sql.TEAM
__all__ = [
    "MISMATCH_PER_MILLE",
    "MISMATCH_TOLERANCE_UC",
    "TEAM",
    "ChargeMismatches",
    "CreditTotals",
    "Figures",
    "Ledger",
    "UsageRow",
]


@dataclass(frozen=True)
class Figures:
    """Sums for one user (or one workspace) in one period, in uc (1/10,000 credit)."""

    limit_uc: int
    granted_uc: int
    used_uc: int
    held_uc: int
    jobs: int = 0

    @property
    def available_uc(self) -> int:
        return self.limit_uc + self.granted_uc - self.used_uc - self.held_uc


class Ledger(LedgerReads):
    def __init__(
        self,
        store: Store,
        *,
        default_limit: Decimal,
        default_team_budget: Decimal,
        period_kind: str,
        timezone: ZoneInfo,
        now: Callable[[], dt.datetime] | None = None,
        workspace_settings: WorkspaceSettings | None = None,
    ) -> None:
        """The default_* figures and the period are the environment's; a workspace's own
        settings (`workspace_settings`, built from them when not given) come first."""
        self.store = store
        self.default_limit_uc = to_uc(default_limit)
        self.default_team_uc = to_uc(default_team_budget)
        self.period_kind = period_kind
        self.timezone = timezone
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        if workspace_settings is None:
            # (A ledger built alone — tests, benchmarks: the other keys at their defaults.)
            env = EnvDefaults.from_settings(Settings.model_construct()).with_budgets(
                default_limit, default_team_budget, period_kind, str(timezone)
            )
            workspace_settings = WorkspaceSettings(store, env, Catalog.load(None))
        self.workspace_settings = workspace_settings

    # -- periods -----------------------------------------------------------------------------

    def current_period(self) -> Period:
        """The environment's current period (workspaces with their own period: `period_in`)."""
        return period_for(self._now(), self.period_kind, self.timezone)

    async def settings_in(self, tx: Tx, platform: str, workspace: str) -> EffectiveSettings:
        return await self.workspace_settings.read_in(tx, platform, workspace)

    def period_at(self, settings: EffectiveSettings, day: dt.date | None = None) -> Period:
        """The workspace's period now, or the one containing `day` (its period and zone)."""
        return settings.period_at(self._now()) if day is None else settings.period_containing(day)

    async def period_in(self, tx: Tx, platform: str, workspace: str) -> Period:
        """The workspace's current period (the one its new entries count in)."""
        return self.period_at(await self.settings_in(tx, platform, workspace))

    async def workspace_period(
        self, platform: str, workspace: str, day: dt.date | None = None
    ) -> Period:
        async with self.store.reading() as tx:
            return self.period_at(await self.settings_in(tx, platform, workspace), day)

    def period_of(self, day: dt.date | None) -> Period:
        return (
            self.current_period()
            if day is None
            else period_containing(day, self.period_kind, self.timezone)
        )

    # -- figures -----------------------------------------------------------------------------

    async def limit_mc_in(
        self, tx: Tx, who: Requester, settings: EffectiveSettings | None = None
    ) -> int:
        """The user's allowance per period: their own override, else the highest allowance of
        their roles (Discord), else the workspace's allowance setting, else the environment's
        (precedence: explicit limits rows > workspace setting > environment)."""
        own = await sql.own_limit_uc(tx, who.platform, who.workspace, who.user)
        if own is not None:
            return own
        best = await sql.best_role_limit_uc(tx, who.platform, who.workspace, who.roles)
        if best is not None:
            return best
        settings = settings or await self.settings_in(tx, who.platform, who.workspace)
        return to_uc(settings.user_credits_per_period)

    async def team_budget_mc_in(
        self, tx: Tx, platform: str, workspace: str, settings: EffectiveSettings | None = None
    ) -> int:
        """The workspace's budget per period (its `limits` row set by an admin, else its team
        budget setting, else the environment's); 0 means no team cap."""
        own = await sql.own_limit_uc(tx, platform, workspace, TEAM)
        if own is not None:
            return own
        settings = settings or await self.settings_in(tx, platform, workspace)
        return to_uc(settings.team_credits_per_period)

    async def figures_in(
        self, tx: Tx, who: Requester, period: Period, settings: EffectiveSettings | None = None
    ) -> Figures:
        sums = await sql.user_sums(tx, who, period.key)
        limit = await self.limit_mc_in(tx, who, settings)
        return Figures(limit, sums.granted_uc, sums.used_uc, sums.held_uc, sums.jobs)

    async def team_figures_in(
        self,
        tx: Tx,
        platform: str,
        workspace: str,
        period: Period,
        settings: EffectiveSettings | None = None,
    ) -> Figures | None:
        """The workspace's sums, or None when it has no team budget."""
        budget = await self.team_budget_mc_in(tx, platform, workspace, settings)
        if budget <= 0:
            return None
        sums = await sql.team_sums(tx, platform, workspace, period.key)
        return Figures(budget, 0, sums.used_uc, sums.held_uc, sums.jobs)

    async def balance(self, who: Requester, *, period: Period | None = None) -> Balance:
        """The user's figures in their workspace's current period (or `period`)."""
        async with self.store.reading() as tx:
            settings = await self.settings_in(tx, who.platform, who.workspace)
            period = period or self.period_at(settings)
            mine = await self.figures_in(tx, who, period, settings)
            team = await self.team_figures_in(tx, who.platform, who.workspace, period, settings)
            queued_uc = await jobs_sql.queued_reserved_uc(tx, who)
        return Balance(
            requester=who,
            period_start=period.start,
            resets_at=period.resets_at,
            limit=from_uc(mine.limit_uc),
            granted=from_uc(mine.granted_uc),
            used=from_uc(mine.used_uc),
            held=from_uc(mine.held_uc),
            queued=from_uc(queued_uc),
            team_budget=None if team is None else from_uc(team.limit_uc),
            team_used=None if team is None else from_uc(team.used_uc),
            team_held=None if team is None else from_uc(team.held_uc),
        )

    async def balance_once_captured(self, job: Job) -> Balance:
        """The owner's balance as it will be once this job's charge is captured (the delivery
        message shows it before the capture is recorded)."""
        balance = await self.balance(job.requester)
        charge, hold = job.charge, job.reserved
        update = {"used": balance.used + charge, "held": balance.held - hold}
        if balance.team_budget is not None:
            update["team_used"] = (balance.team_used or Decimal(0)) + charge
            update["team_held"] = (balance.team_held or Decimal(0)) - hold
        return balance.model_copy(update=update)

    # -- admission and settlement --------------------------------------------------------------

    async def precheck(self, who: Requester, quote: Decimal) -> None:
        """The budget check alone, without holding (so a refusal costs no EvoLink call);
        `hold_in` repeats it atomically."""
        async with self.store.reading() as tx:
            settings = await self.settings_in(tx, who.platform, who.workspace)
            await self._check_room(tx, who, to_uc(quote), self.period_at(settings), settings)

    async def hold_in(
        self,
        tx: Tx,
        who: Requester,
        job_id: str,
        quote_uc: int,
        period: Period,
        *,
        force: bool,
        settings: EffectiveSettings | None = None,
    ) -> None:
        """Write the job's hold if the quote fits the user's and the team's room; else
        BudgetError, and the caller's transaction rolls the hold back. The job row must already
        be inserted in the same transaction. `force` (an admin approved this very job) writes
        the hold without checking.

        The hold is written first and checked against the totals its own upsert returns (one
        statement less per admission; and were write transactions ever not serialised, the
        upsert's row lock would still order two admissions of the same user or team)."""
        totals = await sql.write_hold(tx, who, job_id, quote_uc, period.key)
        if not force:
            await self._check_room(tx, who, quote_uc, period, settings, written=totals)

    async def settle_in(
        self, tx: Tx, job_id: str, *, charge_uc: int | None, actor: str | None = None
    ) -> bool:
        """Settle the job's hold once: capture `charge_uc`, or release when it is None.
        False when the hold was already settled (or there is none) — nothing written."""
        return await sql.write_settlement(tx, job_id, charge_uc, actor)

    async def _check_room(
        self,
        tx: Tx,
        who: Requester,
        quote_uc: int,
        period: Period,
        settings: EffectiveSettings | None = None,
        *,
        written: tuple[sql.Sums, sql.Sums] | None = None,
    ) -> None:
        """BudgetError unless the quote fits the user's and the team's room; `written`: the
        (user's, team's) totals that already hold it (else they are read). The defaults are
        the workspace's `settings` (read here when not given)."""
        where = (who.platform, who.workspace, who.user)
        sums = written or await sql.user_and_team_totals(tx, period.key, *where)
        own, budget = await sql.own_and_team_limit_uc(tx, *where)
        settings = settings or await self.settings_in(tx, who.platform, who.workspace)
        if own is None:
            best = await sql.best_role_limit_uc(tx, who.platform, who.workspace, who.roles)
            own = to_uc(settings.user_credits_per_period) if best is None else best
        budget = to_uc(settings.team_credits_per_period) if budget is None else budget
        before = quote_uc if written else 0
        mine, team = sums
        room = Figures(own, mine.granted_uc, mine.used_uc, mine.held_uc).available_uc + before
        if quote_uc > room:
            raise _refusal("user", quote_uc, room, period)
        room = Figures(budget, 0, team.used_uc, team.held_uc).available_uc + before
        if budget > 0 and quote_uc > room:
            raise _refusal("team", quote_uc, room, period)

    # -- admin changes (each with its audit row) ------------------------------------------------

    async def set_limit(
        self, actor: str, target: Requester, amount: Decimal, reason: str = ""
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.write_limit(
                tx, target.platform, target.workspace, target.user, to_uc(amount), actor
            )
            await sql.write_audit(tx, actor, "set-limit", target.key, to_uc(amount), reason)

    async def set_team_budget(
        self, actor: str, platform: str, workspace: str, amount: Decimal, reason: str = ""
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.write_limit(tx, platform, workspace, TEAM, to_uc(amount), actor)
            await sql.write_audit(
                tx, actor, "set-team-budget", f"{platform}:{workspace}", to_uc(amount), reason
            )

    async def set_role_limit(
        self,
        actor: str,
        platform: str,
        workspace: str,
        role: str,
        amount: Decimal,
        reason: str = "",
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.write_role_limit(tx, platform, workspace, role, to_uc(amount), actor)
            target = f"{platform}:{workspace}:role:{role}"
            await sql.write_audit(tx, actor, "set-role-limit", target, to_uc(amount), reason)

    async def grant(self, actor: str, target: Requester, amount: Decimal, reason: str) -> None:
        async with self.store.transaction() as tx:
            await self.grant_in(tx, actor, target, to_uc(amount), reason, action="grant")

    async def grant_in(
        self, tx: Tx, actor: str, target: Requester, amount_uc: int, reason: str, *, action: str
    ) -> None:
        """A grant for the target workspace's current period and its audit row (`action`), in
        the caller's tx."""
        period = await self.period_in(tx, target.platform, target.workspace)
        await sql.write_grant(tx, target, amount_uc, period.key, actor, reason)
        await sql.write_audit(tx, actor, action, target.key, amount_uc, reason)

    async def audit_in(
        self, tx: Tx, actor: str, action: str, target: str, amount_uc: int | None, reason: str
    ) -> None:
        await sql.write_audit(tx, actor, action, target, amount_uc, reason)

    async def audit_log(self) -> list[dict[str, object]]:
        async with self.store.reading() as tx:
            return await sql.audit_entries(tx)

    async def has_history(self, platform: str, workspace: str, user: str | None = None) -> bool:
        """Has this user (None: anyone) of the workspace ever used the bot: a job, a request
        for approval or a ledger entry? (To warn an admin about a mistyped id.)"""
        async with self.store.reading() as tx:
            return await sql.has_history(tx, platform, workspace, user)


def _refusal(scope: str, quote_uc: int, available_uc: int, period: Period) -> BudgetError:
    left = max(available_uc, 0)
    whose = "You have" if scope == "user" else "Your team has"
    resets = period.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    message = (
        f"This video costs {fmt_credits(quote_uc)} credits. {whose} {fmt_credits(left)} credits "
        f"left this period; the budget resets on {resets}."
    )
    return BudgetError(
        message,
        scope=scope,
        price=from_uc(quote_uc),
        available=from_uc(available_uc),
        resets_at=period.resets_at,
    )
