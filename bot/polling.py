"""When to look at a task again: adaptive, not a fixed tick.

The delay follows the best estimate of the time left: observed progress rate when progress
moves, EvoLink's `task_info.estimated_time` before it does. Far from the end we look rarely
(half the remaining time), close to the end we look just after the expected finish, errors
back off exponentially, and a `Retry-After` is always honoured.

Invariants: the delay is always within [MIN_DELAY, MAX_DELAY] (or the Retry-After, if
longer); with callbacks enabled polling is only a safety net: stretched by CALLBACK_STRETCH,
at least CALLBACK_FLOOR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_DELAY = 1.0
MAX_DELAY = 120.0
NEAR_END = 20.0  # seconds: closer than this, aim at the expected finish itself
FINISH_MARGIN = 0.5  # look this long after the expected finish
DEFAULT_ESTIMATE = 300.0
CALLBACK_STRETCH = 3.0
CALLBACK_FLOOR = 5.0


@dataclass
class PollState:
    """What the tracker has seen of one task."""

    started_at: float
    estimated_time: float | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)  # (time, progress)
    errors: int = 0

    def observe(self, now: float, progress: int) -> None:
        self.errors = 0
        if not self.samples or self.samples[-1][1] != progress:
            self.samples.append((now, progress))
        # Only the last few samples matter for the rate; keep memory flat for long tasks.
        del self.samples[:-6]


def expected_remaining(state: PollState, now: float) -> float:
    """Seconds until the task is expected to finish (never negative)."""
    elapsed = max(now - state.started_at, 0.0)
    estimate = state.estimated_time or DEFAULT_ESTIMATE
    moving = [s for s in state.samples if s[1] > 0]
    if moving:
        t_last, p_last = moving[-1]
        if p_last >= 100:
            return 0.0
        # Progress is reported as a whole percent, rounded down: the midpoint is the better guess.
        midpoint = p_last + 0.5
        rate = midpoint / max(t_last - state.started_at, 1e-3)  # percent per second overall
        by_rate = (100 - midpoint) / rate - (now - t_last)
        # A stalled or noisy task: trust the rate, but never beyond twice the estimate.
        return max(min(by_rate, 2 * estimate), 0.0)
    return max(estimate - elapsed, 0.0)


def next_delay(
    state: PollState,
    now: float,
    *,
    callbacks: bool = False,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the next status read."""
    if state.errors:
        delay = min(MIN_DELAY * (2 ** min(state.errors, 7)), MAX_DELAY)
    else:
        remaining = expected_remaining(state, now)
        if remaining <= NEAR_END:
            delay = remaining + FINISH_MARGIN
            if remaining <= 0:
                # Overdue: look again soon, a little less eagerly the longer it runs late.
                overdue = now - state.started_at - (state.estimated_time or DEFAULT_ESTIMATE)
                delay = 2.0 + max(overdue, 0.0) * 0.1
        else:
            delay = remaining / 2
        delay = min(max(delay, MIN_DELAY), MAX_DELAY)
        if callbacks:
            # Callbacks make delivery immediate; polling only guards against a lost one.
            delay = min(max(delay * CALLBACK_STRETCH, CALLBACK_FLOOR), MAX_DELAY * 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return float(delay)
