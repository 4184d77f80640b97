"""Offline model of tracking: bot.domain.polling against the simulator's own progress curves, no
I/O.

The tracker's loop is replayed on a virtual clock: read at submission, then wait
`next_delay(...)`, read again, until the task is completed. The task state comes from the
real `Simulator.state` (same pending phase, same noise model, same `estimated_time` error),
so thousands of tasks per shape take a second. Use it to tune bot/domain/polling.py, then confirm
with bench/tracking.py (real HTTP, SQLite, delivery). Lag here is detection lag only (the
delivery overhead the real bench adds is not modelled).

    python bench/polling_model.py [--tasks 2000] [--lengths 30,60,120,300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain.polling import PollState, next_delay
from bot.infra.simulator import Simulator, SimulatorConfig

SHAPES = {
    "steady": {"progress_noise": False, "estimate_error": 1.0},
    "noisy-short": {"progress_noise": True, "estimate_error": 0.5},
    "noisy-long": {"progress_noise": True, "estimate_error": 1.5},
}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class VirtualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def track(sim: Simulator, clock: VirtualClock) -> tuple[int, float]:
    """(status reads, detection lag) for one task started now."""
    task = sim._new_task(
        {"model": "sora-2-preview", "prompt": "model", "duration": 8}, Decimal(0), None
    )
    state = PollState(started_at=clock.now, estimated_time=task.estimated_time)
    reads = 0
    while True:
        reads += 1
        status, progress = sim.state(task)
        if status == "completed":
            return reads, clock.now - (task.started + task.seconds)
        state.observe(clock.now, progress)
        clock.now += next_delay(state, clock.now)
        if reads > 10_000:
            raise RuntimeError("runaway polling")


def run(lengths: list[float], tasks: int) -> None:
    header = (
        f"{'length':>6} {'progress':<12} {'reads':>6} {'p95':>4} {'max':>4} "
        f"{'lag p50':>8} {'lag p95':>8} {'lag max':>8}"
    )
    print(header)
    print("-" * len(header))
    for length in lengths:
        for name, shape in SHAPES.items():
            clock = VirtualClock(1000.0)
            sim = Simulator(
                SimulatorConfig(task_seconds=length, seed=7, **shape),  # type: ignore[arg-type]
                clock=clock,
            )
            reads, lags = [], []
            for _ in range(tasks):
                r, lag = track(sim, clock)
                reads.append(float(r))
                lags.append(lag)
                clock.now += 1.0
            print(
                f"{length:>6.0f} {name:<12} {statistics.fmean(reads):>6.1f} "
                f"{quantile(reads, 0.95):>4.0f} {max(reads):>4.0f} "
                f"{statistics.median(lags):>7.2f}s {quantile(lags, 0.95):>7.2f}s {max(lags):>7.2f}s"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--lengths", default="30,60,120,300")
    args = parser.parse_args()
    run([float(x) for x in args.lengths.split(",")], args.tasks)
