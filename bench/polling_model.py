"""Offline model of tracking: bot.domain.polling against the simulator's own progress curves, no
I/O.

The tracker's loop is replayed on a virtual clock: the submit answer is the first look (as in
bot/services/tracker_steps.py), then wait `next_delay(...)`, read, until the task is completed.
The task state comes from the real `Simulator.state` (same pending phase, same noise model, same
`estimated_time` error), so thousands of tasks per shape take a second. Use it to tune
bot/domain/polling.py, then confirm with bench/tracking.py or bench/replicas.py --part reads
(real HTTP, delivery, batch reads). Lag here is detection lag only (completion → the read that
saw it; the delivery overhead the real benches add is not modelled).

Columns: `reads` = status reads per task after the submit answer (mean, p95, max), `s/read` =
the tasks' total life (start → detection) over their total reads (EvoLink's own clients read
a video task at most every 8 s: this is the average spacing), `req/30s` = the requests per job
per 30 s if every read were a request of its own (batch reads only lower it), and the
detection lag. `noisy` is bench/replicas.py --part reads' shape (exact estimate).

    python bench/polling_model.py [--tasks 2000] [--lengths 30,90,300]
                                  [--shapes steady,noisy,...] [--policy path/to/polling.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.domain import polling
from bot.infra.simulator import Simulator, SimulatorConfig

SHAPES = {
    "steady": {"progress_noise": False, "estimate_error": 1.0},
    "noisy": {"progress_noise": True, "estimate_error": 1.0},
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


def track(policy: ModuleType, sim: Simulator, clock: VirtualClock) -> tuple[int, float, float]:
    """(status reads after the submit answer, detection lag, life) of one task started now."""
    task = sim._new_task(
        {"model": "sora-2-preview", "prompt": "model", "duration": 8}, Decimal(0), None
    )
    start = clock.now
    state = policy.PollState(started_at=start, estimated_time=task.estimated_time)
    reads = -1  # the submit answer is the first look, not a status read
    while True:
        reads += 1
        status, progress = sim.state(task)
        if status == "completed":
            return reads, clock.now - (task.started + task.seconds), clock.now - start
        state.observe(clock.now, progress)
        clock.now += policy.next_delay(state, clock.now)
        if reads > 10_000:
            raise RuntimeError("runaway polling")


def load(path: str | None) -> ModuleType:
    if path is None:
        return polling
    spec = importlib.util.spec_from_file_location("polling_candidate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(policy: ModuleType, lengths: list[float], shapes: list[str], tasks: int) -> None:
    header = (
        f"{'length':>6} {'progress':<12} {'reads':>6} {'p95':>4} {'max':>4} {'s/read':>6} "
        f"{'req/30s':>7} {'lag p50':>8} {'lag p95':>8} {'lag max':>8}"
    )
    print(header)
    print("-" * len(header))
    for length in lengths:
        for name in shapes:
            clock = VirtualClock(1000.0)
            sim = Simulator(
                SimulatorConfig(task_seconds=length, seed=7, **SHAPES[name]),  # type: ignore[arg-type]
                clock=clock,
            )
            reads, lags, lives = [], [], []
            for _ in range(tasks):
                r, lag, life = track(policy, sim, clock)
                reads.append(float(r))
                lags.append(lag)
                lives.append(life)
                clock.now += 1.0
            spacing = sum(lives) / max(sum(reads), 1.0)
            print(
                f"{length:>6.0f} {name:<12} {statistics.fmean(reads):>6.1f} "
                f"{quantile(reads, 0.95):>4.0f} {max(reads):>4.0f} {spacing:>5.1f}s "
                f"{30 / spacing:>7.2f} "
                f"{statistics.median(lags):>7.2f}s {quantile(lags, 0.95):>7.2f}s {max(lags):>7.2f}s"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--lengths", default="30,90,300")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"of {', '.join(SHAPES)}")
    parser.add_argument(
        "--policy", help="a copy of bot/domain/polling.py to replay instead (A/B a change)"
    )
    args = parser.parse_args()
    run(
        load(args.policy),
        [float(x) for x in args.lengths.split(",")],
        args.shapes.split(","),
        args.tasks,
    )
