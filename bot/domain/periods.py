"""Calendar budget periods (`day`, `week` starting Monday, `month`) in the budget time zone.

Invariant: a period is identified by its first local date (`period_start`); every ledger entry
carries the `period_start` it counts in, so a new period needs no reset job — its sums simply
start empty. `resets_at` is the first instant of the next period, as an aware UTC datetime.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Period:
    start: dt.date
    resets_at: dt.datetime  # aware, UTC

    @property
    def key(self) -> str:
        return self.start.isoformat()


def _next_start(start: dt.date, kind: str) -> dt.date:
    if kind == "day":
        return start + dt.timedelta(days=1)
    if kind == "week":
        return start + dt.timedelta(days=7)
    if start.month == 12:
        return dt.date(start.year + 1, 1, 1)
    return dt.date(start.year, start.month + 1, 1)


def period_start_for(day: dt.date, kind: str) -> dt.date:
    if kind == "day":
        return day
    if kind == "week":
        return day - dt.timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown budget period {kind!r}")


def period_for(moment: dt.datetime, kind: str, tz: ZoneInfo) -> Period:
    """The period containing `moment` (aware datetime)."""
    local = moment.astimezone(tz)
    start = period_start_for(local.date(), kind)
    nxt = _next_start(start, kind)
    resets_local = dt.datetime.combine(nxt, dt.time(0, 0), tzinfo=tz)
    return Period(start=start, resets_at=resets_local.astimezone(dt.UTC))


def period_containing(day: dt.date, kind: str, tz: ZoneInfo) -> Period:
    """The period containing local date `day` (for reports about past periods)."""
    return period_for(dt.datetime.combine(day, dt.time(12, 0), tzinfo=tz), kind, tz)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
