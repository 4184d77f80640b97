"""The credit ledger: append-only entries, never mutable counters.

Entries (table `ledger`, amounts in integer milli-credits):
    hold     on accepting a job: the quote                (amount = quote)
    capture  on delivery: the actual charge               (amount = charge, settles = the hold)
    release  on failure or cancel: the hold given back    (amount = 0,      settles = the hold)
    grant    an admin adds credits for the period          (amount = credits)

Invariants:
- Every hold is settled at most once (a unique index on the settling entries' job id) and a
  terminal job's hold is always settled: `held` counts only unsettled holds.
- For a user in a period:  available = limit + granted − used − held, where used = Σ capture,
  held = Σ hold − Σ settles. For a workspace with a team budget: available = budget − used − held
  over all its users. A period's figures are sums over entries carrying that `period_start`
  (an entry counts in the period its job was accepted in), so a new period needs no reset job.
- `admit` runs inside the caller's `BEGIN IMMEDIATE` transaction and either writes the hold or
  raises `BudgetError`: two concurrent requests can never both spend the same credits.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.errors import BudgetError
from bot.models import Requester, fmt_credits, from_mc
from bot.periods import Period
from bot.store import now_iso

TEAM = ""  # the `limits.user` value of a workspace's team budget


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


_SUMS = """
    SELECT
      COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_mc END), 0),
      COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_mc END), 0),
      COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_mc END), 0)
        - COALESCE(SUM(settles_mc), 0),
      COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)
    FROM ledger
"""


async def user_limit_mc(tx: aiosqlite.Connection, who: Requester, default_mc: int) -> int:
    """The user's allowance per period: their own override, else the highest allowance of
    their roles (Discord), else the default."""
    cur = await tx.execute(
        "SELECT limit_mc FROM limits WHERE platform = ? AND workspace = ? AND user = ?",
        (who.platform, who.workspace, who.user),
    )
    row = await cur.fetchone()
    if row is not None:
        return int(row[0])
    if who.roles:
        marks = ", ".join("?" for _ in who.roles)
        cur = await tx.execute(
            f"SELECT MAX(limit_mc) FROM role_limits WHERE platform = ? AND workspace = ?"
            f" AND role IN ({marks})",
            (who.platform, who.workspace, *who.roles),
        )
        best = await cur.fetchone()
        if best is not None and best[0] is not None:
            return int(best[0])
    return default_mc


async def set_role_limit(
    tx: aiosqlite.Connection, platform: str, workspace: str, role: str, amount_mc: int, actor: str
) -> None:
    await tx.execute(
        "INSERT INTO role_limits (platform, workspace, role, limit_mc, updated_at, actor)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, role)"
        " DO UPDATE SET limit_mc = excluded.limit_mc, updated_at = excluded.updated_at,"
        " actor = excluded.actor",
        (platform, workspace, role, amount_mc, now_iso(), actor),
    )


async def team_budget_mc(
    tx: aiosqlite.Connection, platform: str, workspace: str, default_mc: int
) -> int:
    """The workspace's budget per period; 0 means no team cap."""
    cur = await tx.execute(
        "SELECT limit_mc FROM limits WHERE platform = ? AND workspace = ? AND user = ?",
        (platform, workspace, TEAM),
    )
    row = await cur.fetchone()
    return default_mc if row is None else int(row[0])


async def user_figures(
    tx: aiosqlite.Connection, who: Requester, period: Period, default_limit_mc: int
) -> Figures:
    cur = await tx.execute(
        _SUMS + " WHERE platform = ? AND workspace = ? AND user = ? AND period_start = ?",
        (who.platform, who.workspace, who.user, period.key),
    )
    row = await cur.fetchone()
    assert row is not None
    limit = await user_limit_mc(tx, who, default_limit_mc)
    return Figures(limit, int(row[0]), int(row[1]), int(row[2]), int(row[3]))


async def team_figures(
    tx: aiosqlite.Connection, platform: str, workspace: str, period: Period, default_budget_mc: int
) -> Figures | None:
    """The workspace's sums, or None when it has no team budget."""
    budget = await team_budget_mc(tx, platform, workspace, default_budget_mc)
    if budget <= 0:
        return None
    cur = await tx.execute(
        _SUMS + " WHERE platform = ? AND workspace = ? AND period_start = ?",
        (platform, workspace, period.key),
    )
    row = await cur.fetchone()
    assert row is not None
    return Figures(budget, 0, int(row[1]), int(row[2]), int(row[3]))


async def admit(
    tx: aiosqlite.Connection,
    who: Requester,
    job_id: str,
    quote_mc: int,
    period: Period,
    *,
    default_limit_mc: int,
    default_team_mc: int,
    force: bool = False,
) -> None:
    """Write the job's hold if the quote fits the user's and the team's room; else BudgetError.

    The job row must already be inserted in the same transaction. `force` (an admin approved
    this very job) writes the hold without checking.
    """
    if not force:
        await check_room(tx, who, quote_mc, period, default_limit_mc, default_team_mc)
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user, kind, amount_mc, job_id)"
        " VALUES (?, ?, ?, ?, ?, 'hold', ?, ?)",
        (now_iso(), period.key, who.platform, who.workspace, who.user, quote_mc, job_id),
    )


async def check_room(
    tx: aiosqlite.Connection,
    who: Requester,
    quote_mc: int,
    period: Period,
    default_limit_mc: int,
    default_team_mc: int,
) -> None:
    """BudgetError unless the quote fits both the user's and the team's room."""
    mine = await user_figures(tx, who, period, default_limit_mc)
    if quote_mc > mine.available_mc:
        raise _refusal("user", quote_mc, mine.available_mc, period)
    team = await team_figures(tx, who.platform, who.workspace, period, default_team_mc)
    if team is not None and quote_mc > team.available_mc:
        raise _refusal("team", quote_mc, team.available_mc, period)


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


async def settle(
    tx: aiosqlite.Connection, job_id: str, *, charge_mc: int | None, actor: str | None = None
) -> bool:
    """Settle the job's hold once: capture `charge_mc`, or release when it is None.

    Returns False when the hold was already settled (or there is none) — nothing written.
    """
    cur = await tx.execute(
        "SELECT period_start, platform, workspace, user, amount_mc FROM ledger "
        "WHERE job_id = ? AND kind = 'hold'",
        (job_id,),
    )
    hold = await cur.fetchone()
    if hold is None:
        return False
    cur = await tx.execute(
        "SELECT 1 FROM ledger WHERE job_id = ? AND kind IN ('capture', 'release')", (job_id,)
    )
    if await cur.fetchone() is not None:
        return False
    kind = "release" if charge_mc is None else "capture"
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user, kind, amount_mc,"
        " settles_mc, job_id, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now_iso(),
            hold[0],
            hold[1],
            hold[2],
            hold[3],
            kind,
            charge_mc or 0,
            int(hold[4]),
            job_id,
            actor,
        ),
    )
    return True


async def add_grant(
    tx: aiosqlite.Connection,
    who: Requester,
    amount_mc: int,
    period: Period,
    actor: str,
    reason: str,
) -> None:
    await tx.execute(
        "INSERT INTO ledger (at, period_start, platform, workspace, user, kind, amount_mc, actor,"
        " reason) VALUES (?, ?, ?, ?, ?, 'grant', ?, ?, ?)",
        (now_iso(), period.key, who.platform, who.workspace, who.user, amount_mc, actor, reason),
    )


async def set_limit(
    tx: aiosqlite.Connection, platform: str, workspace: str, user: str, amount_mc: int, actor: str
) -> None:
    await tx.execute(
        "INSERT INTO limits (platform, workspace, user, limit_mc, updated_at, actor)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, user)"
        " DO UPDATE SET limit_mc = excluded.limit_mc, updated_at = excluded.updated_at,"
        " actor = excluded.actor",
        (platform, workspace, user, amount_mc, now_iso(), actor),
    )


async def audit(
    tx: aiosqlite.Connection,
    actor: str,
    action: str,
    target: str,
    amount_mc: int | None,
    reason: str = "",
) -> None:
    await tx.execute(
        "INSERT INTO audit (at, actor, action, target, amount_mc, reason)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (now_iso(), actor, action, target, amount_mc, reason),
    )
