"""The money owner: every credit figure, every ledger entry and the arithmetic between them.

Entries (table `ledger`, amounts in integer milli-credits; SQL in bot/infra/store/ledger_rows.py):
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
- `hold_in` runs inside the caller's `BEGIN IMMEDIATE` transaction and either writes the hold
  or raises `BudgetError`: two concurrent requests can never both spend the same credits.
- What a delivered job costs is `Job.charge`: EvoLink's billed charge when it reported one,
  else the quote. Every admin change of money (limits, grants, budgets) writes its audit row in
  the same transaction.
- Reports, metrics, alerts and adapters read figures from here; nothing else sums entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.errors import BudgetError
from bot.domain.models import Balance, Job, Requester, fmt_credits, from_mc, to_mc
from bot.domain.periods import Period, period_containing, period_for
from bot.infra.store import Store, Tx
from bot.infra.store import job_rows as jobs_sql
from bot.infra.store import ledger_rows as sql

TEAM = sql.TEAM
#: A charge "differs" from its hold beyond max(10 mc = 0.01 credits, 0.5 % of the hold).
MISMATCH_TOLERANCE_MC = 10
MISMATCH_PER_MILLE = 5


@dataclass(frozen=True)
class Figures:
    """Sums for one user (or one workspace) in one period, in milli-credits."""

    limit_mc: int
    granted_mc: int
    used_mc: int
    held_mc: int
    jobs: int = 0

    @property
    def available_mc(self) -> int:
        return self.limit_mc + self.granted_mc - self.used_mc - self.held_mc


@dataclass(frozen=True)
class UsageRow:
    platform: str
    workspace: str
    user: str
    period_start: dt.date
    limit: Decimal
    granted: Decimal
    used: Decimal
    reserved: Decimal
    jobs: int
    failed: int = 0

    @property
    def available(self) -> Decimal:
        return self.limit + self.granted - self.used - self.reserved


@dataclass(frozen=True)
class ChargeMismatches:
    """Captures that differ from their hold beyond the tolerance, ever (for /metrics)."""

    over: int
    over_credits: Decimal
    under: int
    under_credits: Decimal


@dataclass(frozen=True)
class CreditTotals:
    """Across every user: credits held now and captured ever, and the same for one period."""

    held: Decimal
    captured: Decimal
    period_held: Decimal
    period_captured: Decimal


class Ledger:
    def __init__(
        self,
        store: Store,
        *,
        default_limit: Decimal,
        default_team_budget: Decimal,
        period_kind: str,
        timezone: ZoneInfo,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.default_limit_mc = to_mc(default_limit)
        self.default_team_mc = to_mc(default_team_budget)
        self.period_kind = period_kind
        self.timezone = timezone
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    # -- periods -----------------------------------------------------------------------------

    def current_period(self) -> Period:
        return period_for(self._now(), self.period_kind, self.timezone)

    def period_of(self, day: dt.date | None) -> Period:
        return (
            self.current_period()
            if day is None
            else period_containing(day, self.period_kind, self.timezone)
        )

    # -- figures -----------------------------------------------------------------------------

    async def limit_mc_in(self, tx: Tx, who: Requester) -> int:
        """The user's allowance per period: their own override, else the highest allowance of
        their roles (Discord), else the default."""
        own = await sql.own_limit_mc(tx, who.platform, who.workspace, who.user)
        if own is not None:
            return own
        best = await sql.best_role_limit_mc(tx, who.platform, who.workspace, who.roles)
        return self.default_limit_mc if best is None else best

    async def team_budget_mc_in(self, tx: Tx, platform: str, workspace: str) -> int:
        """The workspace's budget per period; 0 means no team cap."""
        own = await sql.own_limit_mc(tx, platform, workspace, TEAM)
        return self.default_team_mc if own is None else own

    async def figures_in(self, tx: Tx, who: Requester, period: Period) -> Figures:
        sums = await sql.user_sums(tx, who, period.key)
        limit = await self.limit_mc_in(tx, who)
        return Figures(limit, sums.granted_mc, sums.used_mc, sums.held_mc, sums.jobs)

    async def team_figures_in(
        self, tx: Tx, platform: str, workspace: str, period: Period
    ) -> Figures | None:
        """The workspace's sums, or None when it has no team budget."""
        budget = await self.team_budget_mc_in(tx, platform, workspace)
        if budget <= 0:
            return None
        sums = await sql.team_sums(tx, platform, workspace, period.key)
        return Figures(budget, 0, sums.used_mc, sums.held_mc, sums.jobs)

    async def balance(self, who: Requester, *, period: Period | None = None) -> Balance:
        period = period or self.current_period()
        async with self.store.reading() as tx:
            mine = await self.figures_in(tx, who, period)
            team = await self.team_figures_in(tx, who.platform, who.workspace, period)
            queued_mc = await jobs_sql.queued_reserved_mc(tx, who)
        return Balance(
            requester=who,
            period_start=period.start,
            resets_at=period.resets_at,
            limit=from_mc(mine.limit_mc),
            granted=from_mc(mine.granted_mc),
            used=from_mc(mine.used_mc),
            held=from_mc(mine.held_mc),
            queued=from_mc(queued_mc),
            team_budget=None if team is None else from_mc(team.limit_mc),
            team_used=None if team is None else from_mc(team.used_mc),
            team_held=None if team is None else from_mc(team.held_mc),
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

    async def usage(
        self,
        *,
        platform: str | None = None,
        workspace: str | None = None,
        period: Period | None = None,
    ) -> list[UsageRow]:
        """One row per user with ledger entries in the period."""
        period = period or self.current_period()
        result: list[UsageRow] = []
        async with self.store.reading() as tx:
            statuses = await jobs_sql.period_status_counts(tx, period.key, platform, workspace)
            for who, sums in await sql.sums_by_user(tx, period.key, platform, workspace):
                limit_mc = await self.limit_mc_in(tx, who)
                failed = statuses.get(((who.platform, who.workspace, who.user), "failed"), 0)
                result.append(
                    UsageRow(
                        platform=who.platform,
                        workspace=who.workspace,
                        user=who.user,
                        period_start=period.start,
                        limit=from_mc(limit_mc),
                        granted=from_mc(sums.granted_mc),
                        used=from_mc(sums.used_mc),
                        reserved=from_mc(sums.held_mc),
                        jobs=sums.jobs,
                        failed=failed,
                    )
                )
        return result

    async def captures_by_user(
        self, period: Period, platform: str | None, workspace: str | None
    ) -> dict[tuple[str, str, str], int]:
        async with self.store.reading() as tx:
            return await sql.captures_by_user(tx, period.key, platform, workspace)

    async def team_budgets_mc(
        self, workspaces: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        async with self.store.reading() as tx:
            return {ws: await self.team_budget_mc_in(tx, *ws) for ws in sorted(set(workspaces))}

    async def totals(self) -> CreditTotals:
        async with self.store.reading() as tx:
            held, captured, p_held, p_captured = await sql.totals(tx, self.current_period().key)
        return CreditTotals(from_mc(held), from_mc(captured), from_mc(p_held), from_mc(p_captured))

    @staticmethod
    def charge_differs(hold_mc: int, charge_mc: int) -> bool:
        """The tolerance rule (the SQL of `charge_mismatches` states the same numbers)."""
        limit = max(MISMATCH_TOLERANCE_MC * 1000, hold_mc * MISMATCH_PER_MILLE)
        return abs(charge_mc - hold_mc) * 1000 > limit

    async def charge_mismatches(self) -> ChargeMismatches:
        async with self.store.reading() as tx:
            over, over_mc, under, under_mc = await sql.charge_mismatches(
                tx, MISMATCH_TOLERANCE_MC, MISMATCH_PER_MILLE
            )
        return ChargeMismatches(over, from_mc(over_mc), under, from_mc(under_mc))

    async def captures_between(self, since: str, until: str) -> list[sql.CaptureRow]:
        """Captures written in (since, until] (ISO UTC), for `sora-bot admin reconcile`."""
        async with self.store.reading() as tx:
            return await sql.captures_between(tx, since, until)

    # -- admission and settlement --------------------------------------------------------------

    async def precheck(self, who: Requester, quote: Decimal) -> None:
        """The budget check alone, without holding (so a refusal costs no EvoLink call);
        `hold_in` repeats it atomically."""
        async with self.store.reading() as tx:
            await self._check_room(tx, who, to_mc(quote), self.current_period())

    async def hold_in(
        self, tx: Tx, who: Requester, job_id: str, quote_mc: int, period: Period, *, force: bool
    ) -> None:
        """Write the job's hold if the quote fits the user's and the team's room; else
        BudgetError. The job row must already be inserted in the same transaction. `force`
        (an admin approved this very job) writes the hold without checking."""
        if not force:
            await self._check_room(tx, who, quote_mc, period)
        await sql.write_hold(tx, who, job_id, quote_mc, period.key)

    async def settle_in(
        self, tx: Tx, job_id: str, *, charge_mc: int | None, actor: str | None = None
    ) -> bool:
        """Settle the job's hold once: capture `charge_mc`, or release when it is None.
        False when the hold was already settled (or there is none) — nothing written."""
        return await sql.write_settlement(tx, job_id, charge_mc, actor)

    async def _check_room(self, tx: Tx, who: Requester, quote_mc: int, period: Period) -> None:
        mine = await self.figures_in(tx, who, period)
        if quote_mc > mine.available_mc:
            raise _refusal("user", quote_mc, mine.available_mc, period)
        team = await self.team_figures_in(tx, who.platform, who.workspace, period)
        if team is not None and quote_mc > team.available_mc:
            raise _refusal("team", quote_mc, team.available_mc, period)

    # -- admin changes (each with its audit row) ------------------------------------------------

    async def set_limit(
        self, actor: str, target: Requester, amount: Decimal, reason: str = ""
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.write_limit(
                tx, target.platform, target.workspace, target.user, to_mc(amount), actor
            )
            await sql.write_audit(tx, actor, "set-limit", target.key, to_mc(amount), reason)

    async def set_team_budget(
        self, actor: str, platform: str, workspace: str, amount: Decimal, reason: str = ""
    ) -> None:
        async with self.store.transaction() as tx:
            await sql.write_limit(tx, platform, workspace, TEAM, to_mc(amount), actor)
            await sql.write_audit(
                tx, actor, "set-team-budget", f"{platform}:{workspace}", to_mc(amount), reason
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
            await sql.write_role_limit(tx, platform, workspace, role, to_mc(amount), actor)
            target = f"{platform}:{workspace}:role:{role}"
            await sql.write_audit(tx, actor, "set-role-limit", target, to_mc(amount), reason)

    async def grant(self, actor: str, target: Requester, amount: Decimal, reason: str) -> None:
        async with self.store.transaction() as tx:
            await self.grant_in(tx, actor, target, to_mc(amount), reason, action="grant")

    async def grant_in(
        self, tx: Tx, actor: str, target: Requester, amount_mc: int, reason: str, *, action: str
    ) -> None:
        """A grant for the current period and its audit row (`action`), in the caller's tx."""
        period = self.current_period()
        await sql.write_grant(tx, target, amount_mc, period.key, actor, reason)
        await sql.write_audit(tx, actor, action, target.key, amount_mc, reason)

    async def audit_in(
        self, tx: Tx, actor: str, action: str, target: str, amount_mc: int | None, reason: str
    ) -> None:
        await sql.write_audit(tx, actor, action, target, amount_mc, reason)

    async def audit_log(self) -> list[dict[str, object]]:
        async with self.store.reading() as tx:
            return await sql.audit_entries(tx)

    async def has_history(self, platform: str, workspace: str, user: str | None = None) -> bool:
        """Has this user (None: anyone) of the workspace ever used the bot: a job, a request
        for approval or a ledger entry? (To warn an admin about a mistyped id.)"""
        async with self.store.reading() as tx:
            return await sql.has_history(tx, platform, workspace, user)


def _refusal(scope: str, quote_mc: int, available_mc: int, period: Period) -> BudgetError:
    left = max(available_mc, 0)
    whose = "You have" if scope == "user" else "Your team has"
    resets = period.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    message = (
        f"This video costs {fmt_credits(quote_mc)} credits. {whose} {fmt_credits(left)} credits "
        f"left this period; the budget resets on {resets}."
    )
    return BudgetError(
        message,
        scope=scope,
        price=from_mc(quote_mc),
        available=from_mc(available_mc),
        resets_at=period.resets_at,
    )
