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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.catalog import Catalog
from bot.domain.errors import BudgetError
from bot.domain.models import Balance, Job, Requester, fmt_credits, from_uc, to_uc
from bot.domain.periods import Period, period_containing, period_for
from bot.domain.workspace_settings import EffectiveSettings
from bot.infra.store import Store, Tx
from bot.infra.store import job_rows as jobs_sql
from bot.infra.store import ledger_rows as sql
from bot.services.totals import Verification, compare
from bot.services.workspace_settings import EnvDefaults, WorkspaceSettings

TEAM = sql.TEAM
#: A charge "differs" from its hold beyond max(100 uc = 0.01 credits, 0.5 % of the hold).
MISMATCH_TOLERANCE_UC = 100
MISMATCH_PER_MILLE = 5


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
            env = EnvDefaults(
                "", default_limit, default_team_budget, period_kind, str(timezone), 2, 8
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

    async def usage(
        self,
        *,
        platform: str | None = None,
        workspace: str | None = None,
        period: Period | None = None,
        day: dt.date | None = None,
    ) -> list[UsageRow]:
        """One row per user with ledger entries in the period: `period` when given, else each
        workspace's own period containing `day` (default: now) — rows carry their
        `period_start`, so workspaces on different periods each show their own."""
        result: list[UsageRow] = []
        async with self.store.reading() as tx:
            scopes: list[tuple[Period, str | None, str | None, set[tuple[str, str]]]] = []
            if period is not None:
                scopes.append((period, platform, workspace, set()))
            elif platform is not None and workspace is not None:
                own = await self.settings_in(tx, platform, workspace)
                scopes.append((self.period_at(own, day), platform, workspace, set()))
            else:
                keys = ("budget_period", "budget_timezone")
                apart = {
                    ws
                    for ws in await self.workspace_settings.overriding_in(tx, keys)
                    if platform is None or ws[0] == platform
                }
                env = self.current_period() if day is None else self.period_of(day)
                scopes.append((env, platform, workspace, apart))
                for p, w in sorted(apart):
                    scopes.append(
                        (self.period_at(await self.settings_in(tx, p, w), day), p, w, set())
                    )
            for when, p_, w_, skip in scopes:
                result.extend(await self._usage_rows(tx, when, p_, w_, skip))
        return sorted(result, key=lambda r: (r.platform, r.workspace, r.user))

    async def _usage_rows(
        self,
        tx: Tx,
        period: Period,
        platform: str | None,
        workspace: str | None,
        skip: set[tuple[str, str]],
    ) -> list[UsageRow]:
        statuses = await jobs_sql.period_status_counts(tx, period.key, platform, workspace)
        settings: dict[tuple[str, str], EffectiveSettings] = {}
        found: list[UsageRow] = []
        for who, sums in await sql.sums_by_user(tx, period.key, platform, workspace):
            ws = (who.platform, who.workspace)
            if ws in skip:
                continue
            if ws not in settings:
                settings[ws] = await self.settings_in(tx, *ws)
            limit_uc = await self.limit_mc_in(tx, who, settings[ws])
            failed = statuses.get(((who.platform, who.workspace, who.user), "failed"), 0)
            found.append(
                UsageRow(
                    platform=who.platform,
                    workspace=who.workspace,
                    user=who.user,
                    period_start=period.start,
                    limit=from_uc(limit_uc),
                    granted=from_uc(sums.granted_uc),
                    used=from_uc(sums.used_uc),
                    reserved=from_uc(sums.held_uc),
                    jobs=sums.jobs,
                    failed=failed,
                )
            )
        return found

    async def captures_by_user(
        self, period: Period, platform: str | None, workspace: str | None
    ) -> dict[tuple[str, str, str], int]:
        async with self.store.reading() as tx:
            return await sql.captures_by_user(tx, period.key, platform, workspace)

    async def team_budgets_uc(
        self, workspaces: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        async with self.store.reading() as tx:
            return {ws: await self.team_budget_mc_in(tx, *ws) for ws in sorted(set(workspaces))}

    async def totals(self) -> CreditTotals:
        async with self.store.reading() as tx:
            held, captured, p_held, p_captured = await sql.totals(tx, self.current_period().key)
        return CreditTotals(from_uc(held), from_uc(captured), from_uc(p_held), from_uc(p_captured))

    @staticmethod
    def charge_differs(hold_uc: int, charge_uc: int) -> bool:
        """The tolerance rule (the SQL of `charge_mismatches` states the same numbers)."""
        limit = max(MISMATCH_TOLERANCE_UC * 1000, hold_uc * MISMATCH_PER_MILLE)
        return abs(charge_uc - hold_uc) * 1000 > limit

    async def charge_mismatches(self) -> ChargeMismatches:
        async with self.store.reading() as tx:
            over, over_uc, under, under_uc = await sql.charge_mismatches(
                tx, MISMATCH_TOLERANCE_UC, MISMATCH_PER_MILLE
            )
        return ChargeMismatches(over, from_uc(over_uc), under, from_uc(under_uc))

    async def verify(self) -> Verification:
        """Every running total recomputed from the entries and compared (`admin verify`)."""
        async with self.store.reading() as tx:
            stored = await sql.all_stored_totals(tx)
            recomputed = await sql.recomputed_totals(tx)
        return compare(stored, recomputed)

    async def captures_between(self, since: str, until: str) -> list[sql.CaptureRow]:
        """Captures written in (since, until] (ISO UTC), for `sora-bot admin reconcile`."""
        async with self.store.reading() as tx:
            return await sql.captures_between(tx, since, until)

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
