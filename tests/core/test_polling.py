"""The adaptive poll-delay policy (bot.domain.polling), replayed on a virtual clock.

Progress curves are plain functions of time here (steady, a final stall at 99%, a late spurt,
a task that never reports progress), so each scenario is exact and the whole file runs in
milliseconds. The end-to-end figures are in bench/tracking.py and bench/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.polling import (
    CALLBACK_FLOOR,
    MAX_DELAY,
    MIN_DELAY,
    PollState,
    expected_remaining,
    next_delay,
)

Progress = Callable[[float], int]


def steady(total: float) -> Progress:
    return lambda t: min(99, int(100 * t / total))


def replay(
    progress: Progress, total: float, estimate: float | None, *, callbacks: bool = False
) -> tuple[int, float, list[float]]:
    """(status reads, detection lag, delays) of the tracker's loop for a task ending at `total`."""
    now, reads, delays = 0.0, 0, []
    state = PollState(started_at=0.0, estimated_time=estimate)
    while True:
        reads += 1
        if now >= total:
            return reads, now - total, delays
        state.observe(now, progress(now))
        delay = next_delay(state, now, callbacks=callbacks)
        delays.append(delay)
        now += delay
        assert reads < 1000, "runaway polling"


def test_steady_300s_task_takes_few_reads_and_is_seen_within_a_second() -> None:
    reads, lag, _ = replay(steady(300), 300, 300)
    assert reads <= 6
    assert 0 <= lag <= 1.0


def test_steady_task_with_an_estimate_half_the_truth_is_still_caught_quickly() -> None:
    # The estimate disagrees with progress, so the policy stays cautious (short strides).
    reads, lag, _ = replay(steady(300), 300, 150)
    assert lag <= 2.0
    assert reads <= 20


def test_stall_at_99_is_read_often_at_first_then_less() -> None:
    # 99% reached at 200 s, finished at 260 s: a 60 s stall at the end.
    def stalled(t: float) -> int:
        return min(99, int(t / 2))

    reads, lag, delays = replay(stalled, 260, 300)
    assert lag <= 4.0, "a stall is followed closely"
    due = [d for d in delays if d < 5]
    assert due == sorted(due), "the spacing only grows while the task is overdue"
    assert reads <= 45


def test_a_late_spurt_is_caught_by_its_rate() -> None:
    # Slow to 30% until 262 s, then 30 → 100% in the last 37.5 s (the simulator's worst shape).
    def spurt(t: float) -> int:
        if t < 262.5:
            return max(1, int(30 * t / 262.5))
        return min(99, int(30 + 70 * (t - 262.5) / 37.5))

    reads, lag, _ = replay(spurt, 300, 450)
    assert lag <= 4.0
    assert reads <= 30


def test_a_task_that_never_reports_progress_is_bounded_when_overdue() -> None:
    reads, lag, delays = replay(lambda _t: 0, 900, 300)
    assert lag <= 30.0
    overdue = []
    now = 0.0
    for delay in delays:
        if now >= 300:
            overdue.append(delay)
        now += delay
    assert overdue and overdue[0] <= 2.0, "looked at soon after the estimate passed"
    assert max(overdue) <= 30.0, "and never forgotten"
    assert reads <= 100


def test_a_stall_is_not_taken_for_slow_progress() -> None:
    state = PollState(started_at=0.0, estimated_time=100)
    state.observe(10, 10)
    for t in (20, 30, 40, 50):  # stalled at 10% for 40 s…
        state.observe(t, 10)
    state.observe(52, 20)  # …then 10% in at most 2 s
    # Counted from the read before the change: 10%/2 s, not 10%/42 s.
    assert expected_remaining(state, 52) < 30


def test_callbacks_make_polling_a_safety_net() -> None:
    state = PollState(started_at=0.0, estimated_time=300)
    state.observe(0, 0)
    plain = next_delay(state, 0)
    assert next_delay(state, 0, callbacks=True) >= max(plain, CALLBACK_FLOOR)


def test_retry_after_and_errors() -> None:
    state = PollState(started_at=0.0, estimated_time=30)
    state.observe(0, 0)
    assert next_delay(state, 29.5, retry_after=17) == 17
    state.errors = 3
    first = next_delay(state, 5)
    state.errors = 4
    assert next_delay(state, 5) == 2 * first
    state.errors = 40
    assert next_delay(state, 5) == MAX_DELAY
    state.observe(6, 5)
    assert state.errors == 0


def test_state_stays_small_for_long_tasks() -> None:
    state = PollState(started_at=0.0, estimated_time=3600)
    for t in range(3600):
        state.observe(float(t), t // 36)
    assert len(state.samples) <= 4


@settings(max_examples=300, deadline=None)
@given(
    estimate=st.one_of(st.none(), st.floats(1, 3600)),
    observations=st.lists(
        st.tuples(st.floats(0, 5000), st.integers(0, 100)), min_size=0, max_size=12
    ),
    now_extra=st.floats(0, 5000),
    errors=st.integers(0, 20),
    callbacks=st.booleans(),
)
def test_delay_is_always_within_bounds(
    estimate: float | None,
    observations: list[tuple[float, int]],
    now_extra: float,
    errors: int,
    callbacks: bool,
) -> None:
    state = PollState(started_at=0.0, estimated_time=estimate)
    now, progress = 0.0, 0
    for step, value in observations:
        now += step
        progress = max(progress, value)  # EvoLink's progress never goes down
        state.observe(now, progress)
    state.errors = errors
    now += now_extra
    delay = next_delay(state, now, callbacks=callbacks)
    assert MIN_DELAY <= delay <= MAX_DELAY * 2
    assert expected_remaining(state, now) >= 0
