"""The ledger's running totals against its entries: what `sora-bot admin verify` reports.

Part of the money owner (bot/services/ledger.py calls `compare` from `Ledger.verify`); the
totals and their recomputation are read by bot/infra/store/ledger_rows.py.

Invariants:
- The entries are the truth; a running total (`ledger_totals`: granted, used, held and jobs
  per period and user, and per workspace with user = TEAM) is a cache of `_SUMS` over them,
  written in the same transaction as each entry. `compare` lists every field of every total
  that differs from its recomputation, a missing row counting as zeros on either side.
- Pure: no I/O; amounts in integer uc (1 credit = 10,000 uc), jobs a count.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra.store.ledger_rows import TEAM, Sums, TotalsKey

FIELDS = ("granted", "used", "held", "jobs")


@dataclass(frozen=True)
class TotalsDifference:
    """One field of one running total that its entries do not give."""

    period_start: str
    platform: str
    workspace: str
    user: str  # TEAM ('') for the workspace's total
    field: str  # granted | used | held (uc) | jobs (a count)
    total: int
    recomputed: int

    @property
    def scope(self) -> str:
        return "team" if self.user == TEAM else "user"

    @property
    def target(self) -> str:
        """`PLATFORM:WORKSPACE:USER`, or `PLATFORM:WORKSPACE` for the team."""
        base = f"{self.platform}:{self.workspace}"
        return base if self.user == TEAM else f"{base}:{self.user}"

    @property
    def is_amount(self) -> bool:
        return self.field != "jobs"


@dataclass(frozen=True)
class Verification:
    checked: int  # totals compared (stored or recomputed)
    differences: tuple[TotalsDifference, ...]

    @property
    def agrees(self) -> bool:
        return not self.differences


def _values(sums: Sums) -> tuple[int, int, int, int]:
    return sums.granted_uc, sums.used_uc, sums.held_uc, sums.jobs


def compare(stored: dict[TotalsKey, Sums], recomputed: dict[TotalsKey, Sums]) -> Verification:
    """Every difference, in (period, platform, workspace, user, field) order."""
    zero = Sums(0, 0, 0, 0)
    keys = sorted(set(stored) | set(recomputed))
    found: list[TotalsDifference] = []
    for key in keys:
        mine = _values(stored.get(key, zero))
        truth = _values(recomputed.get(key, zero))
        for name, total, recount in zip(FIELDS, mine, truth, strict=True):
            if total != recount:
                found.append(TotalsDifference(*key, field=name, total=total, recomputed=recount))
    return Verification(checked=len(keys), differences=tuple(found))
