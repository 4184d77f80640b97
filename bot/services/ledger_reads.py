"""The ledger's reading half (a part of bot/services/ledger.py, split for length): usage per
user, the report and metrics sums, the charge-mismatch counts and `verify`. `Ledger` inherits
it; nothing else uses it. Same invariants as ledger.py, and:

- `usage` without a period gives each workspace its own current period (or the one containing
  `day`): the workspaces whose settings set `budget_period` or `budget_timezone` are read in
  their own period, the others in the environment's; every row carries its `period_start`.
- `usage`, `totals` and the mismatch counts sum entries (occasional reads; a cross-check of the
  running totals admission reads).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from bot.domain.models import Requester, from_uc
from bot.domain.periods import Period
from bot.domain.workspace_settings import EffectiveSettings
from bot.infra.store import Store, Tx
from bot.infra.store import job_rows as jobs_sql
from bot.infra.store import ledger_rows as sql
from bot.services.totals import Verification, compare
from bot.services.workspace_settings import WorkspaceSettings

#: A charge "differs" from its hold beyond max(100 uc = 0.01 credits, 0.5 % of the hold).
MISMATCH_TOLERANCE_UC = 100
MISMATCH_PER_MILLE = 5


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


class LedgerReads(ABC):
    store: Store
    workspace_settings: WorkspaceSettings

    @abstractmethod
    def current_period(self) -> Period: ...

    @abstractmethod
    def period_of(self, day: dt.date | None) -> Period: ...

    @abstractmethod
    def period_at(self, settings: EffectiveSettings, day: dt.date | None = None) -> Period: ...

    @abstractmethod
    async def settings_in(self, tx: Tx, platform: str, workspace: str) -> EffectiveSettings: ...

    @abstractmethod
    async def limit_mc_in(
        self, tx: Tx, who: Requester, settings: EffectiveSettings | None = None
    ) -> int: ...

    @abstractmethod
    async def team_budget_mc_in(
        self, tx: Tx, platform: str, workspace: str, settings: EffectiveSettings | None = None
    ) -> int: ...

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
