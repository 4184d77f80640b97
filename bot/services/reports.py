"""Usage reports: one period's spend per person, for the CSV export, chat tables and the chart.

A report is a read-only snapshot built from the ledger (`SoraService.usage`, which checks that
the actor administers the reported scope) plus a few job and ledger counts; nothing here writes.

Invariants:
- Every figure is exact: credits are `Decimal`s derived from integer uc (1/10,000 credit). The only
  rounding is the average cost per delivered job (`used / delivered`), rounded half-up to the
  uc, the ledger's own unit, and the pace figures (same rounding).
- The rows' sums equal the ledger's sums for the period: Σ used = Σ capture entries,
  Σ reserved = Σ unsettled holds, Σ granted = Σ grant entries, Σ jobs = number of holds.
- `delivered` counts the period's capture entries (exactly one per delivered job).
- The snapshot is two reads (`service.usage`, then the counts and budgets): a job finishing in
  between can show in `delivered` before its charge shows in `used`, in that one report only.
- A past period (`day` given) is reported with the limits and team budgets as they are now:
  the `limits` table keeps no history, the ledger does.
- The CSV never carries a cell a spreadsheet would run as a formula (display names are typed
  by users).
- `elapsed` is the share of the period gone at `generated_at` (1 for a finished period); the pace
  of an allowance is `elapsed × allowance` — where spending would be if spread evenly.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from bot.domain.models import fmt_credits, from_uc
from bot.domain.permissions import Actor

if TYPE_CHECKING:
    from bot.services.service import SoraService

MILLI = Decimal("0.001")
SHARE = Decimal("0.0001")

UserKey = tuple[str, str, str]  # platform, workspace, user

CSV_COLUMNS = (
    "platform",
    "workspace",
    "user",
    "name",
    "jobs",
    "delivered",
    "failed",
    "cancelled",
    "used",
    "held",
    "left",
    "limit",
    "granted",
    "allowance",
    "average_cost",
    "team_budget",
    "period_start",
    "period_end",
    "reserved",  # = held, under the name the outside contract gives it
)


@dataclass(frozen=True)
class PersonUsage:
    """One person's figures in the period."""

    platform: str
    workspace: str
    user: str
    name: str  # the latest display name seen on their jobs, else the user id
    jobs: int  # accepted in the period (every hold)
    delivered: int
    failed: int
    cancelled: int
    used: Decimal
    reserved: Decimal
    limit: Decimal
    granted: Decimal

    @property
    def allowance(self) -> Decimal:
        """What the person may spend this period: limit plus grants."""
        return self.limit + self.granted

    @property
    def available(self) -> Decimal:
        return self.allowance - self.used - self.reserved

    @property
    def average_cost(self) -> Decimal | None:
        """Mean charge per delivered job, None when nothing was delivered."""
        if self.delivered == 0:
            return None
        return (self.used / self.delivered).quantize(MILLI, rounding=ROUND_HALF_UP)

    @property
    def workspace_key(self) -> str:
        return f"{self.platform}:{self.workspace}"


@dataclass(frozen=True)
class TeamUsage:
    """A workspace with a team budget: its people's sums against that budget."""

    platform: str
    workspace: str
    budget: Decimal
    used: Decimal
    reserved: Decimal

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}"

    @property
    def available(self) -> Decimal:
        return self.budget - self.used - self.reserved


@dataclass(frozen=True)
class Totals:
    jobs: int
    delivered: int
    failed: int
    cancelled: int
    used: Decimal
    reserved: Decimal
    granted: Decimal


@dataclass(frozen=True)
class UsageReport:
    period_start: dt.date
    period_end: dt.date  # the period's last local day (inclusive)
    resets_at: dt.datetime  # aware UTC: the first instant of the next period
    generated_at: dt.datetime  # aware UTC
    elapsed: Decimal  # share of the period gone at generated_at, 0..1
    rows: tuple[PersonUsage, ...]
    teams: tuple[TeamUsage, ...]
    #: USER_CREDITS_PER_PERIOD: the allowance of whoever has no limit of their own (the
    #: chart of an empty period still shows it); None when unknown.
    default_allowance: Decimal | None = None

    @property
    def totals(self) -> Totals:
        return Totals(
            jobs=sum(r.jobs for r in self.rows),
            delivered=sum(r.delivered for r in self.rows),
            failed=sum(r.failed for r in self.rows),
            cancelled=sum(r.cancelled for r in self.rows),
            used=sum((r.used for r in self.rows), Decimal(0)),
            reserved=sum((r.reserved for r in self.rows), Decimal(0)),
            granted=sum((r.granted for r in self.rows), Decimal(0)),
        )

    def team_of(self, row: PersonUsage) -> TeamUsage | None:
        return next((t for t in self.teams if t.key == row.workspace_key), None)

    def pace(self, allowance: Decimal) -> Decimal:
        """Where spending of `allowance` would be now if spread evenly over the period."""
        return (self.elapsed * allowance).quantize(MILLI, rounding=ROUND_HALF_UP)


def elapsed_share(start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Decimal:
    """The share of [start, end) gone at `now`, clamped to 0..1, to four decimals."""
    total = int((end - start).total_seconds())
    gone = int((now - start).total_seconds())
    gone = min(max(gone, 0), total)
    return (Decimal(gone) / Decimal(total)).quantize(SHARE, rounding=ROUND_HALF_UP)


async def build_report(
    service: SoraService,
    *,
    actor: Actor,
    platform: str | None = None,
    workspace: str | None = None,
    day: dt.date | None = None,
    now: dt.datetime | None = None,
) -> UsageReport:
    """The usage of the period containing `day` (default: the current period) in (platform,
    workspace), None meaning every one.

    `actor` must administer that scope (`bot.domain.permissions`; PermissionDenied otherwise): a
    chat user their own workspace, an operator admin their platform; the CLI passes its
    string actor and sees everything.
    """
    book = service.book
    # One workspace: its own period, zone and allowance (bot/services/workspace_settings.py);
    # every workspace at once: the environment's period, each row summed over that period.
    own = None
    if platform is not None and workspace is not None:
        own = await service.workspace_settings(actor, platform, workspace)
    period = service.period_of(day) if own is None else book.ledger.period_at(own, day)
    usage = await service.usage(actor, platform, workspace, period=period)

    statuses = await book.period_status_counts(period.key, platform, workspace)
    names = await book.display_names(period.key, platform, workspace)
    delivered = await book.ledger.captures_by_user(period, platform, workspace)
    budgets = await book.ledger.team_budgets_uc((u.platform, u.workspace) for u in usage)

    rows = tuple(
        PersonUsage(
            platform=u.platform,
            workspace=u.workspace,
            user=u.user,
            name=names.get((u.platform, u.workspace, u.user), u.user),
            jobs=u.jobs,
            delivered=delivered.get((u.platform, u.workspace, u.user), 0),
            failed=statuses.get(((u.platform, u.workspace, u.user), "failed"), 0),
            cancelled=statuses.get(((u.platform, u.workspace, u.user), "cancelled"), 0),
            used=u.used,
            reserved=u.reserved,
            limit=u.limit,
            granted=u.granted,
        )
        for u in usage
    )
    teams = tuple(
        TeamUsage(
            platform=ws[0],
            workspace=ws[1],
            budget=from_uc(budget_uc),
            used=sum((r.used for r in rows if (r.platform, r.workspace) == ws), Decimal(0)),
            reserved=sum((r.reserved for r in rows if (r.platform, r.workspace) == ws), Decimal(0)),
        )
        for ws, budget_uc in budgets.items()
        if budget_uc > 0
    )
    tz = book.ledger.timezone if own is None else own.timezone
    start = dt.datetime.combine(period.start, dt.time(0, 0), tzinfo=tz)
    generated = now or dt.datetime.now(dt.UTC)
    return UsageReport(
        period_start=period.start,
        period_end=period.resets_at.astimezone(tz).date() - dt.timedelta(days=1),
        resets_at=period.resets_at,
        generated_at=generated,
        elapsed=elapsed_share(start, period.resets_at, generated),
        rows=rows,
        teams=teams,
        default_allowance=(
            service.settings.user_credits_per_period if own is None else own.user_credits_per_period
        ),
    )


def plain(value: Decimal | None) -> str:
    """A credit figure as a plain decimal string: ``23.04``, ``300``; empty for None."""
    return "" if value is None else fmt_credits(value)


def _cell(text: str) -> str:
    """Text from chat (display names) is neutralised so a spreadsheet never runs it as a
    formula (CSV injection): a leading = + - @ tab or CR gets a quote in front."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(report: UsageReport) -> str:
    """One row per person with a header row; credit columns are plain decimals (no totals row,
    so a spreadsheet's sums are the ledger's). The words are the ones people read everywhere:
    used, held, left, limit, granted, allowance (= limit + granted); `reserved` repeats held
    for the outside contract."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        team = report.team_of(r)
        writer.writerow(
            (
                _cell(r.platform),
                _cell(r.workspace),
                _cell(r.user),
                _cell(r.name),
                r.jobs,
                r.delivered,
                r.failed,
                r.cancelled,
                plain(r.used),
                plain(r.reserved),
                plain(r.available),
                plain(r.limit),
                plain(r.granted),
                plain(r.allowance),
                plain(r.average_cost),
                plain(team.budget if team else None),
                report.period_start.isoformat(),
                report.period_end.isoformat(),
                plain(r.reserved),
            )
        )
    return out.getvalue()


def period_title(report: UsageReport) -> str:
    return f"{report.period_start.isoformat()} – {report.period_end.isoformat()}"


def report_text(report: UsageReport, *, max_rows: int = 25) -> str:
    """A compact fixed-width table for chat (wrap it in a code block there)."""
    share = int((report.elapsed * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    resets = report.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Usage {period_title(report)} · {share}% of the period gone · resets {resets}"]
    if not report.rows:
        lines.append("No usage in this period.")
        return "\n".join(lines) + "\n"
    many_workspaces = len({r.workspace_key for r in report.rows}) > 1
    header = ("person", "jobs", "ok", "fail", "used", "held", "allowance", "left", "avg")
    table: list[tuple[str, ...]] = []
    ranked = sorted(report.rows, key=lambda r: (-(r.used + r.reserved), r.name))
    for r in ranked[:max_rows]:
        who = f"{r.name} ({r.workspace})" if many_workspaces else r.name
        table.append(
            (
                who[:24],
                str(r.jobs),
                str(r.delivered),
                str(r.failed),
                plain(r.used),
                plain(r.reserved),
                plain(r.allowance),
                plain(r.available),
                plain(r.average_cost) or "-",
            )
        )
    t = report.totals
    table.append(
        (
            "total",
            str(t.jobs),
            str(t.delivered),
            str(t.failed),
            plain(t.used),
            plain(t.reserved),
            "",
            "",
            "",
        )
    )
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(header)]

    def fmt(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells).rstrip()

    lines.append(fmt(header))
    lines += [fmt(row) for row in table[:-1]]
    if len(ranked) > max_rows:
        lines.append(f"… and {len(ranked) - max_rows} more (see the CSV export)")
    lines.append(fmt(table[-1]))
    for team in report.teams:
        lines.append(
            f"team {team.key}: {plain(team.used)} used + {plain(team.reserved)} held"
            f" of {plain(team.budget)} (pace {plain(report.pace(team.budget))})"
        )
    return "\n".join(lines) + "\n"
