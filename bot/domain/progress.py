"""What progress to show between EvoLink's reads: a moving estimate, marked as one.

EvoLink reports `progress` only when the tracker reads the task, and the reads are few while
the task is far from done (bot/domain/polling.py): a 30 s task would sit at 0% for 15 s. In
between, the shown figure moves with the time elapsed against the task's `estimated_time`:

    estimate = elapsed / estimated_time × 100, in steps of ESTIMATE_STEP, at most ESTIMATE_CAP

Invariants:
- An estimate is shown only while it is ahead of the reported progress; the reported figure
  wins as soon as it is as high. So the shown figure never goes backwards (both grow), never
  claims the end (the cap is below 100) and is always marked as an estimate when it is one.
- Without an `estimated_time` there is no estimate: only what EvoLink reported is shown.
- Pure: the caller gives the elapsed task seconds (the tracker's clock).
"""

from __future__ import annotations

from dataclasses import dataclass

ESTIMATE_STEP = 5  # percent: an estimate moves in visible steps, not a line per second
ESTIMATE_CAP = 95  # percent: an estimate never says "done"


def estimate_progress(reported: int, elapsed: float, estimated_seconds: float | None) -> int | None:
    """The estimated percent to show instead of `reported`, or None when `reported` is the
    better figure (or there is nothing to estimate from)."""
    if not estimated_seconds or estimated_seconds <= 0 or elapsed <= 0:
        return None
    raw = min(elapsed / estimated_seconds * 100.0, float(ESTIMATE_CAP))
    guess = int(raw) // ESTIMATE_STEP * ESTIMATE_STEP
    return guess if guess > reported else None


@dataclass(frozen=True)
class ShownProgress:
    """The figure a port renders: `percent`, and whether it is an estimate."""

    percent: int
    estimated: bool

    @property
    def text(self) -> str:
        """`40%`, or `~40% (estimate)`."""
        return f"~{self.percent}% (estimate)" if self.estimated else f"{self.percent}%"


def shown_progress(progress: int, estimate: int | None) -> ShownProgress:
    """What to render for a job's reported `progress` and its current `estimate`."""
    if estimate is not None and estimate > progress:
        return ShownProgress(estimate, True)
    return ShownProgress(max(0, min(progress, 100)), False)
