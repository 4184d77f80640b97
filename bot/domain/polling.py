"""When to look at a task again: adaptive, not a fixed tick.

The finish is predicted from three witnesses, each good at a different moment:
  - EvoLink's `task_info.estimated_time` (the only one before progress moves; may be ±50% off),
  - the overall rate (progress so far / time so far: steady, fooled by jumps and stalls),
  - the recent rate (the last two progress changes, counted from the read before the change
    so a stall does not pass for slow progress: right when the task ends as it goes now).
When the witnesses agree (steady progress) the reads stride towards the finish and the last
one lands just after the latest moment progress allows (t * 100 / p). When they disagree,
reads stay at most STRIDE_CAP of the expected total apart, so a late spurt is seen twice and
its rate predicts the end. Once the task is due and still running (a stall, e.g. at 99%) it is
read every DUE_STEP seconds, spaced out slowly the longer it is late, so a short overrun is
caught within about two seconds and a long one costs a bounded number of reads.
Errors back off exponentially, and a `Retry-After` is always honoured.
bench/polling_model.py replays this policy against the simulator's progress curves offline.

Invariants: the delay is always within [MIN_DELAY, MAX_DELAY] (or the Retry-After, if
longer); with callbacks enabled polling is only a safety net: stretched by CALLBACK_STRETCH,
at least CALLBACK_FLOOR. The state kept per task is O(1) (at most four samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_DELAY = 1.0
MAX_DELAY = 120.0
DEFAULT_ESTIMATE = 300.0
FAR_SHARE = 0.5  # unsure of the finish: wait this share of the time left
SURE_SHARE = 0.8  # the witnesses agree: wait this share of the time left
AGREE = 1.12  # witnesses agree when the longest total is within this factor of the shortest
STRIDE_CAP = 0.08  # unsure: never wait longer than this share of the predicted total
STRIDE_FLOOR = 2.5  # ...but not so close that short tasks are read every second
SURE_AIM = 40.0  # sure, and the latest finish is closer than this: aim at it
NEAR_END = 12.0  # seconds: closer than this, aim at the predicted finish itself
FINISH_MARGIN = 0.4  # look this long after the predicted finish
DUE_STEP = 1.7  # first spacing once the task is due
DUE_GROWTH = 0.03  # spacing grows by this share of the time spent overdue
DUE_STEP_MAX = 30.0
CALLBACK_STRETCH = 3.0
CALLBACK_FLOOR = 5.0


@dataclass
class PollState:
    """What the tracker has seen of one task (times in task seconds on the tracker's clock)."""

    started_at: float
    estimated_time: float | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)  # (first seen, progress)
    errors: int = 0
    last_seen: float | None = None  # the latest read
    changed_after: float | None = None  # the read before samples[-1] first showed
    due_since: float | None = None  # when the task became due and was still running

    def observe(self, now: float, progress: int) -> None:
        self.errors = 0
        if not self.samples or self.samples[-1][1] != progress:
            # The change happened after the previous read, not when the old value first showed.
            self.changed_after = self.last_seen
            self.samples.append((now, progress))
            self.due_since = None  # it moved: judge afresh
        self.last_seen = now
        # Only the last few samples matter for the rate; keep memory flat for long tasks.
        del self.samples[:-4]


@dataclass(frozen=True)
class Forecast:
    remaining: float  # best guess of the seconds left
    latest: float  # seconds left if it ends no later than its progress allows (steady)
    sure: bool  # the witnesses agree


def forecast(state: PollState, now: float) -> Forecast:
    elapsed = max(now - state.started_at, 0.0)
    estimate = state.estimated_time or DEFAULT_ESTIMATE
    moving = [s for s in state.samples if s[1] > 0]
    if not moving:
        left = max(estimate - elapsed, 0.0)
        return Forecast(left, left, False)
    t_last, p_last = moving[-1]
    if p_last >= 100:
        return Forecast(0.0, 0.0, True)
    since = max(t_last - state.started_at, 1e-3)
    totals = [since * 100 / (p_last + 0.5)]  # overall rate (midpoint of the whole percent)
    if len(moving) >= 2:
        t_prev, p_prev = moving[-2]
        # A stall before the change is not slow progress: count from the read before it.
        t_from = max(t_prev, state.changed_after or t_prev)
        per_percent = max(t_last - t_from, 1e-3) / max(p_last - p_prev, 1)
        totals.append(since + (99.5 - p_last) * per_percent)  # recent rate
    witnesses = [*totals, estimate]
    sure = len(totals) > 1 and p_last >= 20 and max(witnesses) <= AGREE * min(witnesses)
    # Early on progress says little: lean on the estimate until a fifth is done.
    trust = min(p_last / 20.0, 1.0)
    total = trust * totals[-1] + (1 - trust) * estimate
    remaining = max(min(total, 2 * estimate) - elapsed, 0.0)
    # If progress is proportional to time, p% at t means the end is no later than t*100/p.
    latest = min((t - state.started_at) * 100 / p for t, p in moving) - elapsed
    return Forecast(remaining, max(latest, 0.0), sure)


def expected_remaining(state: PollState, now: float) -> float:
    """Seconds until the task is expected to finish (never negative)."""
    return forecast(state, now).remaining


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
        ahead = forecast(state, now)
        remaining = ahead.remaining
        moving = any(p > 0 for _, p in state.samples)
        if remaining <= 0 or (ahead.sure and ahead.latest <= 0):
            if state.due_since is None:
                state.due_since = now
            late = now - state.due_since
            delay = min(DUE_STEP + DUE_GROWTH * late, DUE_STEP_MAX)
        elif ahead.sure:
            # Progress pins the finish down: stride to it, then look just after the latest
            # moment it can come.
            delay = (
                ahead.latest + FINISH_MARGIN if ahead.latest <= SURE_AIM else remaining * SURE_SHARE
            )
        else:
            delay = remaining + FINISH_MARGIN if remaining <= NEAR_END else remaining * FAR_SHARE
            if moving:
                # Unsure: keep the reads close enough to catch a late spurt at its rate.
                elapsed = max(now - state.started_at, 0.0)
                horizon = min(elapsed + remaining, max(elapsed, state.estimated_time or 0.0))
                delay = min(delay, max(STRIDE_CAP * horizon, STRIDE_FLOOR))
        delay = min(max(delay, MIN_DELAY), MAX_DELAY)
        if callbacks:
            # Callbacks make delivery immediate; polling only guards against a lost one.
            delay = min(max(delay * CALLBACK_STRETCH, CALLBACK_FLOOR), MAX_DELAY * 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return float(delay)
