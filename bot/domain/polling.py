"""When to look at a task again: adaptive, not a fixed tick.

The finish is predicted by witnesses, each good at a different moment:
  - EvoLink's `task_info.estimated_time` (the only one before progress moves; may be ±50% off),
  - the overall rate (progress so far / time so far: steady, fooled by jumps and stalls),
  - the recent rate (the last two progress changes, counted from the read before the change
    so a stall does not pass for slow progress: right when the task ends as it goes now),
  - the latest end steady progress allows (t * 100 / p).
The progress witnesses count once a fifth is done; every end is capped at twice the estimate.
Their ends span a window in which the task is likely to finish, and the reads follow it:
  - until a progress end has passed: stride towards the soonest end still ahead (a share of
    the time left; when the witnesses agree, straight to just after the latest end progress
    allows), never jumping over it — a read lands FINISH_MARGIN after the soonest end, so a
    task that ends where any witness said is seen at once. An outlived estimate only drops out
    (the task is slower than it said: progress then guides, and may be sure by itself);
  - inside the window (a progress end passed while another end is ahead: a stall, e.g. at
    99%, the end may come at any read): a read every `step`, the window left spread evenly
    over the reads the MEAN_INTERVAL average still allows by its far end, within
    [WINDOW_STEP_MIN, WINDOW_STEP_MAX] — the detection lag there is at most one step. The
    reads saved while far from the end are spent here;
  - past every end: read every DUE_STEP seconds, spaced out slowly the longer it is late, so
    a long overrun costs a bounded number of reads.
Errors back off exponentially, and a `Retry-After` is always honoured.
bench/polling_model.py replays this policy against the simulator's progress curves offline;
at its noisy shape (90 s tasks, exact estimate: bench/replicas.py --part reads) it reads a task
every 8.7 s on average (EvoLink's own clients read one every 8 s; no minimum is documented)
and sees the end within 2.2 s at p95.

Invariants: the delay is always within [MIN_DELAY, MAX_DELAY] (or the Retry-After, if
longer); with callbacks enabled polling is only a safety net: stretched by CALLBACK_STRETCH,
at least CALLBACK_FLOOR. The state kept per task is O(1) (at most four samples, a count).
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
MEAN_INTERVAL = 8.0  # seconds per read on average that the window's step is budgeted on
WINDOW_STEP_MIN = 2.5  # inside the window: never closer than this...
WINDOW_STEP_MAX = 5.0  # ...nor further apart (the lag target)
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
    looks: int = 0  # observations so far

    def observe(self, now: float, progress: int) -> None:
        self.errors = 0
        self.looks += 1
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
    soonest: float = 0.0  # seconds left by the earliest witness end still ahead (0: none)
    farthest: float = 0.0  # seconds left by the latest witness end (0: all passed)
    passed: bool = False  # a progress witness's end has passed (inside the window: a stall)


def forecast(state: PollState, now: float) -> Forecast:
    elapsed = max(now - state.started_at, 0.0)
    estimate = state.estimated_time or DEFAULT_ESTIMATE
    moving = [s for s in state.samples if s[1] > 0]
    if not moving:
        left = max(estimate - elapsed, 0.0)
        return Forecast(left, left, False, left, left)
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
    # An estimate the task has outlived is refuted: progress alone may then be sure.
    witnesses = [*totals, *([estimate] if estimate > elapsed else [])]
    sure = len(totals) > 1 and p_last >= 20 and max(witnesses) <= AGREE * min(witnesses)
    # Early on progress says little: lean on the estimate until a fifth is done.
    trust = min(p_last / 20.0, 1.0)
    total = trust * totals[-1] + (1 - trust) * estimate
    remaining = max(min(total, 2 * estimate) - elapsed, 0.0)
    # If progress is proportional to time, p% at t means the end is no later than t*100/p.
    latest = min((t - state.started_at) * 100 / p for t, p in moving) - elapsed
    # Where each witness says the task ends (progress ones once trusted), capped at 2x.
    trusted = (*totals, latest + elapsed) if trust >= 1 else ()
    ends = [min(w, 2 * estimate) - elapsed for w in (*trusted, estimate)]
    ahead = [end for end in ends if end > 0]
    return Forecast(
        remaining,
        max(latest, 0.0),
        sure,
        soonest=min(ahead, default=0.0),
        farthest=max(ahead, default=0.0),
        passed=any(end <= 0 for end in ends[:-1]),  # a progress end: the estimate's is a guess
    )


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
        if ahead.farthest <= 0:  # past every witness's end: due, and still running
            if state.due_since is None:
                state.due_since = now
            late = now - state.due_since
            delay = min(DUE_STEP + DUE_GROWTH * late, DUE_STEP_MAX)
        else:
            stride = _stride(state, now, ahead)
            if ahead.passed and ahead.sure and ahead.latest > 0:
                delay = min(stride, ahead.soonest + FINISH_MARGIN)
            elif ahead.passed:
                delay = _step(state, now, ahead)
                if ahead.remaining > 0:  # the best guess is still ahead: it may be nearer
                    delay = min(delay, stride)
            elif ahead.sure or ahead.soonest <= NEAR_END:
                delay = min(stride, ahead.soonest + FINISH_MARGIN)
            else:
                delay = min(stride, ahead.soonest * FAR_SHARE)
        delay = min(max(delay, MIN_DELAY), MAX_DELAY)
        if callbacks:
            # Callbacks make delivery immediate; polling only guards against a lost one.
            delay = min(max(delay * CALLBACK_STRETCH, CALLBACK_FLOOR), MAX_DELAY * 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return float(delay)


def _stride(state: PollState, now: float, ahead: Forecast) -> float:
    """The wait the best guess alone asks for (before the window's rules)."""
    remaining = ahead.remaining
    if ahead.sure and ahead.latest > 0:
        # Progress pins the finish down: stride to it, then look just after the latest
        # moment it can come.
        return ahead.latest + FINISH_MARGIN if ahead.latest <= SURE_AIM else remaining * SURE_SHARE
    delay = remaining + FINISH_MARGIN if remaining <= NEAR_END else remaining * FAR_SHARE
    if any(p > 0 for _, p in state.samples):
        # Unsure: keep the reads close enough to catch a late spurt at its rate.
        elapsed = max(now - state.started_at, 0.0)
        horizon = min(elapsed + remaining, max(elapsed, state.estimated_time or 0.0))
        delay = min(delay, max(STRIDE_CAP * horizon, STRIDE_FLOOR))
    return delay


def _step(state: PollState, now: float, ahead: Forecast) -> float:
    """Inside the window: the reads the MEAN_INTERVAL average allows by its far end, spread
    evenly over what is left of it."""
    end = max(now - state.started_at, 0.0) + ahead.farthest
    reads_left = max(1.0 + end / MEAN_INTERVAL - state.looks, 1.0)
    return min(max(ahead.farthest / reads_left, WINDOW_STEP_MIN), WINDOW_STEP_MAX)
