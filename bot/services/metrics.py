"""`GET /metrics`: the bot's figures in the Prometheus text exposition format (version 0.0.4).

    metrics = Metrics()                     # one per process, made by the composition root
    metrics.observe_ack("slack", 0.012)     # adapters: request received → acknowledgement sent
    text = await metrics.render(book, tracker, evolink_stats)   # what /metrics serves

Invariants:
- Jobs and credits are read from the store at scrape time (never mirrored in memory), so the
  numbers equal what `sora-bot admin` reports and survive restarts. Credits are computed in
  integer uc (1/10,000 credit) and only converted to decimal text at the end (no float arithmetic).
- EvoLink and tracker counters are the clients' own `stats` Counters: monotonic for the life of
  the process (each HTTP attempt counts, retries included), as Prometheus counters must be.
- `sora_replica_info{replica}` names the replica that answered the scrape (each replica is
  scraped on its own); jobs and credits are the database's, the same on every replica.
- The acknowledgement histogram lives in memory per process; its buckets bracket the 3 s
  platform deadline and the 150 ms target, so both can be read off without interpolation.
- Rendering never raises for odd label values: they are escaped as the format requires.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.services.jobs import JobBook
    from bot.services.tracker import Tracker

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACK_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0,
)  # fmt: skip


@dataclass
class Histogram:
    """Cumulative-bucket histogram of seconds (Prometheus semantics: `le` is inclusive)."""

    buckets: tuple[float, ...] = ACK_BUCKETS
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.count += 1
        self.total += seconds
        # Stored per bucket (not cumulative) so observe is O(log n); rendering accumulates.
        index = bisect.bisect_left(self.buckets, seconds)
        if index < len(self.buckets):
            self.counts[index] += 1

    def cumulative(self) -> list[tuple[str, int]]:
        rows: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            running += n
            rows.append((_number(bound), running))
        rows.append(("+Inf", self.count))
        return rows


class Metrics:
    """Per-process figures the store cannot answer: acknowledgement latencies."""

    def __init__(self) -> None:
        self.ack: dict[str, Histogram] = {}

    def observe_ack(self, platform: str, seconds: float) -> None:
        histogram = self.ack.get(platform)
        if histogram is None:
            histogram = self.ack[platform] = Histogram()
        histogram.observe(seconds)

    async def render(
        self, book: JobBook, tracker: Tracker, evolink_stats: Mapping[str, int]
    ) -> str:
        out = _Exposition()
        by_status = await book.count_by_status()
        out.family("sora_jobs", "gauge", "Jobs in the store, by status.")
        for status, n in sorted(by_status.items()):
            out.sample("sora_jobs", {"status": status}, n)

        out.family("sora_jobs_in_flight", "gauge", "Jobs the tracker is following right now.")
        out.sample("sora_jobs_in_flight", {}, tracker.in_flight)

        out.family("sora_replica_info", "gauge", "This replica (REPLICA_ID); always 1.")
        out.sample("sora_replica_info", {"replica": tracker.book.replica or ""}, 1)
        out.family("sora_job_leases_held", "gauge", "Open jobs whose lease this replica holds.")
        out.sample("sora_job_leases_held", {}, len(tracker.leases.held))

        totals = await book.ledger.totals()
        out.family("sora_credits_held", "gauge", "Credits held by unsettled jobs.")
        out.sample("sora_credits_held", {"period": "current"}, totals.period_held)
        out.sample("sora_credits_held", {"period": "all"}, totals.held)
        out.family("sora_credits_captured", "gauge", "Credits charged for delivered jobs.")
        out.sample("sora_credits_captured", {"period": "current"}, totals.period_captured)
        out.sample("sora_credits_captured", {"period": "all"}, totals.captured)

        mismatches = await book.ledger.charge_mismatches()
        out.family(
            "sora_charge_mismatch_total",
            "counter",
            "Charges EvoLink billed that differ from the job's hold beyond max(0.01, 0.5 %).",
        )
        out.sample("sora_charge_mismatch_total", {"direction": "over"}, mismatches.over)
        out.sample("sora_charge_mismatch_total", {"direction": "under"}, mismatches.under)
        out.family(
            "sora_charge_mismatch_credits_total",
            "counter",
            "Sum of |charge - hold| over those charges, in credits.",
        )
        out.sample(
            "sora_charge_mismatch_credits_total", {"direction": "over"}, mismatches.over_credits
        )
        out.sample(
            "sora_charge_mismatch_credits_total", {"direction": "under"}, mismatches.under_credits
        )

        requests, errors = _split_evolink(evolink_stats)
        out.family(
            "sora_evolink_requests_total", "counter", "EvoLink HTTP attempts, retries included."
        )
        for kind, n in requests:
            out.sample("sora_evolink_requests_total", {"kind": kind}, n)
        out.family(
            "sora_evolink_errors_total",
            "counter",
            "Failed EvoLink attempts, by HTTP status or cause.",
        )
        for reason, n in errors:
            out.sample("sora_evolink_errors_total", {"reason": reason}, n)

        out.family(
            "sora_evolink_task_reads_total",
            "counter",
            "Status reads through the batch reader: batches (POST /v1/tasks/batch), ids in"
            " them, single reads of ids a batch left out, ids left out.",
        )
        for kind in ("batches", "ids", "single", "missing"):
            out.sample("sora_evolink_task_reads_total", {"kind": kind}, tracker.reader.stats[kind])

        out.family("sora_tracker_events_total", "counter", "Job tracker events since start.")
        for event, n in sorted(tracker.stats.items()):
            out.sample("sora_tracker_events_total", {"event": event}, n)

        out.family(
            "sora_ack_latency_seconds",
            "histogram",
            "From a platform event arriving to its acknowledgement being sent.",
        )
        for platform, histogram in sorted(self.ack.items()):
            for le, n in histogram.cumulative():
                out.sample("sora_ack_latency_seconds_bucket", {"platform": platform, "le": le}, n)
            out.sample("sora_ack_latency_seconds_sum", {"platform": platform}, histogram.total)
            out.sample("sora_ack_latency_seconds_count", {"platform": platform}, histogram.count)
        return out.text()


def _split_evolink(stats: Mapping[str, int]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    requests = {kind: 0 for kind in ("submit", "task", "credits", "download")}
    errors: dict[str, int] = {}
    for key, n in stats.items():
        if key.startswith("error:"):
            errors[key.removeprefix("error:")] = n
        else:
            requests[key] = n
    return sorted(requests.items()), sorted(errors.items())


def _number(value: float | int | Decimal) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Exposition:
    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Mapping[str, str], value: float | int | Decimal) -> None:
        self._lines.append(f"{name}{_labels(labels.items())} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in pairs)
    return "{" + inner + "}" if inner else ""
