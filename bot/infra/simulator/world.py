"""The simulator's world: its knobs, its tasks and what it records, and the helpers that make
videos and error envelopes. No HTTP here (bot/infra/simulator/server.py serves it)."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

from aiohttp import web

from bot.domain.pricing import ModelPricing
from bot.domain.task_errors import TASK_ERRORS

Clock = Callable[[], float]

PENDING_FRACTION = 0.1  # share of task_seconds a task stays "pending"
FAIL_FRACTION = 0.5  # failing tasks end halfway
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FAULTS = frozenset({"disconnect", "malformed", "truncate"})
_FAIL_TRIGGER = re.compile(r"\[\[fail:([a-z_]+)\]\]")
_CHUNK = 1 << 16
_TRUNCATE = web.RequestKey("sim_truncate", bool)

TASK_ERROR_MESSAGES: dict[str, str] = {
    code: error.simulated_message for code, error in TASK_ERRORS.items()
}

_HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request", "invalid_request_error", "Invalid request"),
    401: ("invalid_api_key", "authentication_error", "Invalid or missing API key"),
    402: ("insufficient_quota", "insufficient_quota", "Insufficient balance"),
    403: ("forbidden", "permission_error", "Access denied"),
    404: ("not_found", "invalid_request_error", "Not found"),
    413: ("request_too_large", "invalid_request_error", "Request entity too large"),
    429: ("rate_limit_exceeded", "rate_limit_error", "Too many requests"),
    500: ("internal_error", "api_error", "Internal server error"),
    502: ("upstream_error", "api_error", "Bad gateway"),
    503: ("service_unavailable", "api_error", "Service unavailable"),
}


@dataclass
class SimulatorConfig:
    """Knobs. Mutable on purpose: tests change them while the simulator runs."""

    task_seconds: float = 5.0
    progress_noise: bool = False  # stalls and jumps (still never decreasing)
    estimate_error: float = 1.0  # task_info.estimated_time = task_seconds * this
    fail_next: list[str] = field(default_factory=list)  # task error codes for the next tasks
    fail_rate: float = 0.0
    fail_codes: list[str] = field(default_factory=lambda: ["service_error"])
    # per route kind ("submit", "task", "batch", "credits", "pricing", "download"): statuses or
    # faults ("disconnect", "malformed", "truncate"), one consumed per request
    http_errors: dict[str, list[int | str]] = field(default_factory=dict)
    retry_after: float = 1.0  # Retry-After seconds sent with 429
    models: frozenset[str] | None = None  # None: every model the served list offers
    remaining_credits: Decimal = Decimal(10000)
    unlimited_credits: bool = False
    report_credits_used: bool = True  # False: completed tasks carry no usage.credits_used
    callback_timeout: float = 10.0
    callback_retries: int = 3
    callback_backoff: float = 1.0  # retries wait backoff * 1, 2, 4 …
    video_size: int | None = None  # serve this many synthetic bytes instead of the clip
    seed: int | None = None
    # the served price list (GET /v1/catalog/pricing-rules): model id (or "*": every model)
    # -> factor on each rate and minimum; model id -> "absent" (left out), "unavailable"
    # (pricing_status) or another lifecycle ("retired", ...). Read on every request.
    price_factors: dict[str, Decimal] = field(default_factory=dict)
    retired: dict[str, str] = field(default_factory=dict)
    # task object fields EvoLink's clients read (False: an EvoLink that leaves them out)
    report_billing: bool = True  # the `billing` object
    report_cost: bool = True  # usage.cost {credits, usd} once completed
    report_result_data: bool = True  # result_data [{video_url}] beside results
    # POST /v1/tasks/batch (undocumented, seen in EvoLink's MCP client): False answers 404, as
    # an EvoLink without the route would; `batch_key` is where the answer's list goes
    # ("data", "tasks", "items"; None: the bare list)
    batch_reads: bool = True
    batch_key: str | None = "data"
    # request_then_actual models: the output really made is this many seconds, and
    # the charge is the rules' price for it (at most the reservation; the rest is refunded)
    actual_seconds: Decimal | None = None


@dataclass
class SimTask:
    id: str
    model: str
    prompt: str
    aspect_ratio: str | None
    duration: int | None
    image_urls: list[str]
    callback_url: str | None
    created: int
    started: float  # clock time
    seconds: float
    estimated_time: int
    credits_reserved: Decimal
    fail_code: str | None = None
    idempotency_key: str | None = None
    curve: tuple[float, ...] = ()
    cancelled_at: float | None = None
    settled: bool = False
    # what the rules priced (None only for a task made by hand, outside a submit)
    pricing: ModelPricing | None = None
    variables: dict[str, Any] = field(default_factory=dict)  # the rules' variables given
    pricing_version: str | None = None
    credits_charged: Decimal | None = None  # set when settled: what the account paid
    settled_wall: float | None = None  # time.time() of the settlement
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class RecordedRequest:
    kind: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # Authorization reduced to its scheme
    json: Any


@dataclass(frozen=True)
class CallbackAttempt:
    task_id: str
    url: str
    attempt: int  # 1-based
    status: int | None  # None: no response (timeout, refused)
    error: str | None = None


def synthetic_video_chunks(size: int, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """The bytes served when `video_size` is set: a fixed 64 KiB pattern, repeated."""
    block = bytes(range(256)) * (_CHUNK // 256)
    sent = 0
    while sent < size:
        part = block[: min(chunk_size, size - sent, len(block))]
        sent += len(part)
        yield part


#: The lengths of the packaged clips (scripts/make_demo_clips.py makes one per orientation and
#: length): every duration the shipped catalog offers from 3 to 15 s. Another length gets the
#: nearest clip (a tie: the longer one); no length given, the shortest.
CLIP_SECONDS = tuple(range(3, 16))


def clip_name(orientation: str, seconds: int) -> str:
    return f"{orientation}-{seconds:02d}s.mp4"


def clip_seconds(seconds: float | None) -> int:
    """The length of the packaged clip served for a task of `seconds` (see CLIP_SECONDS)."""
    if seconds is None:
        return CLIP_SECONDS[0]
    return min(CLIP_SECONDS, key=lambda s: (abs(s - seconds), -s))


@functools.cache
def clip_bytes(orientation: str, seconds: float | None = None) -> bytes:
    """The packaged clip for "landscape", "portrait" or "square", as long as the clip nearest
    to `seconds` (bot/data/clips: colour bars with a sweeping bar, a short tone)."""
    name = clip_name(orientation, clip_seconds(seconds))
    return resources.files("bot").joinpath(f"data/clips/{name}").read_bytes()


def clip_for(aspect_ratio: str | None, seconds: float | None) -> bytes:
    """What `GET /files/{task}.mp4` serves for a task of this ratio and duration."""
    return clip_bytes(orientation_of(aspect_ratio), seconds)


def orientation_of(aspect_ratio: str | None) -> str:
    match = re.fullmatch(r"\s*(\d+)\s*[:x]\s*(\d+)\s*", aspect_ratio or "")
    if not match:
        return "landscape"
    width, height = int(match[1]), int(match[2])
    return "portrait" if width < height else "square" if width == height else "landscape"


def _number(value: Decimal) -> int | float:
    # float(Decimal("23.04")) prints as 23.04, so a client parsing with Decimal gets it exactly.
    return int(value) if value == value.to_integral() else float(value)


def error_body(
    status: int, message: str | None = None, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    default_code, kind, default_message = _HTTP_ERRORS.get(status, ("error", "api_error", "Error"))
    return {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "type": kind,
            "param": param,
        }
    }
