"""A local EvoLink: the unified video task API, served by aiohttp, for the demo and the tests.

It answers like EvoLink's documented API (docs/PLATFORM-FACTS.md): `POST /v1/videos/generations`,
`GET /v1/tasks/{id}`, `GET /v1/credits`, the same task object and error envelope, callbacks with
10 s timeout and 3 retries (1/2/4 s), `Idempotency-Key` replays. It also serves its own result
links, `GET /files/{task_id}.mp4`, with a real H.264 clip matching the task's orientation.

Invariants:
- A task's state is a pure function of the clock: `pending` for the first tenth of
  `task_seconds`, then `processing` with progress that never goes down, then `completed`
  (or `failed` halfway, when a failure was asked for). No per-task loop runs; one timer per
  task only settles it (billing, callback) when it is due, so thousands of tasks are cheap.
- A task is settled exactly once: its reserved credits are released and, when completed,
  `credits_used` is deducted from the balance. A callback follows settlement.
- One `Idempotency-Key` maps to one task forever; a replay answers that task with
  `idempotency-replayed: true`.
- Injected faults (`SimulatorConfig.http_errors`) are consumed one per request of their kind,
  before authentication, and every request is recorded first (the Authorization value never).
- Differences from the real service, on purpose: plain-http callbacks are accepted for
  loopback hosts (EvoLink demands https and refuses internal addresses); any non-empty model
  name is accepted unless `models` is set; a prompt containing ``[[fail:<code>]]`` fails its
  task with that task error code (so the demo can show failures).

The clips in bot/data were made once, with imageio-ffmpeg's ffmpeg 9.0, by:

    ffmpeg -f lavfi -i "testsrc2=size=320x180:rate=24:duration=2" -c:v libx264 -preset veryslow \
        -crf 32 -pix_fmt yuv420p -movflags +faststart -map_metadata -1 -fflags +bitexact -an \
        bot/data/landscape.mp4
    (the same with size=180x320 → portrait.mp4 and size=240x240 → square.mp4)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.domain.catalog import Catalog
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
    # per route kind ("submit", "task", "credits", "download"): statuses or faults
    # ("disconnect", "malformed", "truncate"), one consumed per request
    http_errors: dict[str, list[int | str]] = field(default_factory=dict)
    retry_after: float = 1.0  # Retry-After seconds sent with 429
    models: frozenset[str] | None = None  # None: any non-empty model name
    remaining_credits: Decimal = Decimal(10000)
    unlimited_credits: bool = False
    credits_per_second: Decimal = Decimal("5.76")  # 23.04 credits for 4 s, as priced
    report_credits_used: bool = True  # False: completed tasks carry no usage.credits_used
    callback_timeout: float = 10.0
    callback_retries: int = 3
    callback_backoff: float = 1.0  # retries wait backoff * 1, 2, 4 …
    video_size: int | None = None  # serve this many synthetic bytes instead of the clip
    seed: int | None = None


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


@functools.cache
def _catalog() -> Catalog:
    return Catalog.load()


def synthetic_video_chunks(size: int, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """The bytes served when `video_size` is set: a fixed 64 KiB pattern, repeated."""
    block = bytes(range(256)) * (_CHUNK // 256)
    sent = 0
    while sent < size:
        part = block[: min(chunk_size, size - sent, len(block))]
        sent += len(part)
        yield part


def clip_bytes(orientation: str) -> bytes:
    """The packaged clip for "landscape", "portrait" or "square"."""
    return resources.files("bot").joinpath(f"data/{orientation}.mp4").read_bytes()


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


class Simulator:
    """The simulated service. Inspect `tasks`, `requests`, `counts`, `callbacks_sent` in tests."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Clock = time.monotonic,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.clock = clock
        self.time_scale = time_scale  # clock seconds per real second (for timers)
        self.tasks: dict[str, SimTask] = {}
        self.requests: list[RecordedRequest] = []
        self.counts: Counter[str] = Counter()
        self.callbacks_sent: list[CallbackAttempt] = []
        self.used_credits = Decimal(0)
        self.reserved_credits = Decimal(0)  # held by tasks not yet settled
        self._base_url: str | None = None
        self._idempotency: dict[str, str] = {}
        self._open: set[str] = set()  # tasks not yet settled
        self._rng = random.Random(self.config.seed)
        self._background: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()  # notified as each request is recorded
        self._session: aiohttp.ClientSession | None = None
        self._clips: dict[str, bytes] = {}
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/v1/videos/generations", self._submit),
                web.get("/v1/tasks/{task_id}", self._get_task),
                web.get("/v1/credits", self._credits),
                web.get("/files/{name}", self._file),
            ]
        )
        self.app.on_cleanup.append(self._cleanup)

    @property
    def base_url(self) -> str:
        """Root URL without /v1 (known once served or once a request arrived)."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not being served yet")
        return self._base_url

    # ---- running -------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def serve(
        cls,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        time_scale: float = 1.0,
    ) -> AsyncIterator[Simulator]:
        """Serve on host:port (0 = any free port); `sim.base_url` is the root without /v1."""
        sim = cls(config, clock=clock, time_scale=time_scale)
        runner = web.AppRunner(sim.app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound_host, bound_port = runner.addresses[0][:2]
            sim._base_url = f"http://{bound_host}:{bound_port}"
            yield sim
        finally:
            await runner.cleanup()

    async def _cleanup(self, _app: web.Application) -> None:
        for task in self.tasks.values():
            if task.timer is not None:
                task.timer.cancel()
        for job in list(self._background):
            job.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # ---- waiting (tests) -------------------------------------------------------------------

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        *,
        after: int = 0,
        timeout: float = 10.0,
    ) -> RecordedRequest:
        """The first of `requests[after:]` matching `predicate`, waiting (at most `timeout` s)
        for it to arrive. A request is recorded on arrival, before its fault or its answer:
        this means "the service has received it", not "it was answered"."""
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for request in self.requests[after:]:
                    if predicate(request):
                        return request
                after = len(self.requests)
                await self._arrived.wait()

    async def wait_callbacks(self, timeout: float = 10.0) -> None:
        """Wait until every callback begun so far was delivered or given up on (retries and
        all): after this, `callbacks_sent` only grows when another task settles."""
        async with asyncio.timeout(timeout):
            while self._background:
                await asyncio.gather(*list(self._background), return_exceptions=True)

    # ---- state -----------------------------------------------------------------------------

    def state(self, task: SimTask) -> tuple[str, int]:
        """(status, progress) of a task now."""
        if task.cancelled_at is not None:
            cancelled_fraction = (task.cancelled_at - task.started) / task.seconds
            return "cancelled", self._progress(task, cancelled_fraction)
        elapsed = self.clock() - task.started
        if task.fail_code is not None and elapsed >= task.seconds * FAIL_FRACTION:
            return "failed", self._progress(task, FAIL_FRACTION)
        if elapsed >= task.seconds:
            return "completed", 100
        fraction = elapsed / task.seconds
        return (
            ("pending", 0)
            if fraction < PENDING_FRACTION
            else ("processing", self._progress(task, fraction))
        )

    def _progress(self, task: SimTask, fraction: float) -> int:
        fraction = min(max(fraction, 0.0), 1.0)
        if task.curve:  # piecewise-linear through cumulative segment weights
            position = fraction * (len(task.curve) - 1)
            index = min(int(position), len(task.curve) - 2)
            low, high = task.curve[index], task.curve[index + 1]
            fraction = low + (high - low) * (position - index)
        return min(99, max(1, int(fraction * 100)))

    def task_object(self, task: SimTask, base_url: str) -> dict[str, Any]:
        status, progress = self.state(task)
        usage: dict[str, Any] = {
            "billing_rule": "per_call",
            "credits_reserved": _number(task.credits_reserved),
            "user_group": "default",
        }
        body: dict[str, Any] = {
            "created": task.created,
            "id": task.id,
            "model": task.model,
            "object": "video.generation.task",
            "progress": progress,
            "status": status,
            "task_info": {
                "can_cancel": status == "pending",
                "estimated_time": task.estimated_time,
                "video_duration": task.duration,
            },
            "type": "video",
            "usage": usage,
        }
        if status == "completed":
            body["results"] = [f"{base_url}/files/{task.id}.mp4"]
            if self.config.report_credits_used:
                usage["credits_used"] = _number(task.credits_reserved)
        elif status in ("failed", "cancelled"):
            code = task.fail_code if status == "failed" else "request_cancelled"
            body["error"] = {"code": code, "message": TASK_ERROR_MESSAGES.get(code or "", code)}
        if status in ("completed", "failed", "cancelled"):
            self._settle(task, status, base_url)
        return body

    def cancel_task(self, task_id: str) -> None:
        """Cancel as the service might (there is no documented cancel endpoint)."""
        task = self.tasks[task_id]
        if self.state(task)[0] in ("pending", "processing"):
            task.cancelled_at = self.clock()
            self.task_object(task, self._base_url or "")

    def settle_due(self) -> None:
        """Settle every task whose end has come (timers do this too; useful with a fake clock)."""
        for task_id in list(self._open):
            self.task_object(self.tasks[task_id], self._base_url or "")

    def _settle(self, task: SimTask, status: str, base_url: str) -> None:
        if task.settled:
            return
        task.settled = True
        self._open.discard(task.id)
        self.reserved_credits -= task.credits_reserved
        if task.timer is not None:
            task.timer.cancel()
        if status == "completed":
            self.used_credits += task.credits_reserved
            if not self.config.unlimited_credits:
                self.config.remaining_credits -= task.credits_reserved
        if task.callback_url:
            body = self.task_object(task, base_url)
            self._spawn(self._send_callback(task.id, task.callback_url, body))

    def _schedule(self, task: SimTask, base_url: str) -> None:
        end = task.seconds * (FAIL_FRACTION if task.fail_code else 1.0)
        delay = max(0.0, task.started + end - self.clock()) / self.time_scale

        def due() -> None:
            status = self.state(task)[0]
            if status in ("pending", "processing"):  # clock slower than planned: look again
                self._schedule(task, base_url)
            else:
                self.task_object(task, base_url)

        task.timer = asyncio.get_running_loop().call_later(max(delay, 0.001), due)

    def _spawn(self, coro: Any) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    async def _send_callback(self, task_id: str, url: str, body: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.config.callback_timeout)
        for attempt in range(1, self.config.callback_retries + 2):
            try:
                async with self._session.post(url, json=body, timeout=timeout) as response:
                    self.callbacks_sent.append(
                        CallbackAttempt(task_id, url, attempt, response.status)
                    )
                    if 200 <= response.status < 300:
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.callbacks_sent.append(
                    CallbackAttempt(task_id, url, attempt, None, type(exc).__name__)
                )
            if attempt <= self.config.callback_retries:
                await asyncio.sleep(self.config.callback_backoff * 2 ** (attempt - 1))

    # ---- HTTP ------------------------------------------------------------------------------

    async def _enter(self, request: web.Request, kind: str) -> web.StreamResponse | None:
        """Record the request, then apply an injected fault or the auth check."""
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"].split(" ", 1)[0]
        if self._base_url is None:  # served by someone else's runner
            self._base_url = str(request.url.origin())
        self.requests.append(
            RecordedRequest(kind, request.method, request.path, dict(request.query), headers, body)
        )
        self.counts[kind] += 1
        async with self._arrived:
            self._arrived.notify_all()
        queue = self.config.http_errors.get(kind)
        if queue:
            fault = queue.pop(0)
            if fault == "disconnect":
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never reaches the closed socket
            if fault == "malformed":
                return web.Response(text='{"id": "task-unified-', content_type="application/json")
            if isinstance(fault, int):
                wait = {"Retry-After": f"{self.config.retry_after:g}"} if fault == 429 else {}
                return web.json_response(error_body(fault), status=fault, headers=wait)
            if fault != "truncate" or kind != "download":
                raise ValueError(f"unknown fault {fault!r} for {kind}")
            request[_TRUNCATE] = True
        if kind != "download":
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                return web.json_response(error_body(401), status=401)
        return None

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "submit")) is not None:
            return early
        body = self.requests[-1].json
        if not isinstance(body, dict):
            return web.json_response(error_body(400, "Body must be a JSON object"), status=400)
        base_url = str(request.url.origin())
        key = request.headers.get("Idempotency-Key")
        if key and key in self._idempotency:
            task = self.tasks[self._idempotency[key]]
            return web.json_response(
                self.task_object(task, base_url), headers={"idempotency-replayed": "true"}
            )
        problem = self._invalid(body)
        if problem is not None:
            param, message = problem
            return web.json_response(error_body(400, message, param=param), status=400)
        price = self._price(body)
        short = self.config.remaining_credits - self.reserved_credits < price
        if short and not self.config.unlimited_credits:
            return web.json_response(error_body(402), status=402)
        task = self._new_task(body, price, key)
        self._schedule(task, base_url)
        return web.json_response(self.task_object(task, base_url))

    def _price(self, body: dict[str, Any]) -> Decimal:
        """Bill as the packaged catalog quotes (so the demo's numbers agree); models or
        durations it does not know fall back to `credits_per_second`."""
        duration = body.get("duration")
        spec = _catalog().find(str(body.get("model", "")))
        if spec is not None and isinstance(duration, int) and duration in spec.prices:
            keep = body.get("remove_watermark")
            return spec.price(duration, remove_watermark=keep if isinstance(keep, bool) else None)
        seconds = duration if isinstance(duration, int) else 10
        return self.config.credits_per_second * Decimal(seconds)

    def _invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        model, prompt = body.get("model"), body.get("prompt")
        if not isinstance(model, str) or not model.strip():
            return "model", "model is required"
        if self.config.models is not None and model not in self.config.models:
            return "model", f"Unsupported model: {model}"
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt", "prompt is required"
        duration = body.get("duration")
        if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= 60):
            return "duration", "duration must be a whole number of seconds"
        images = body.get("image_urls")
        if images is not None and (
            not isinstance(images, list)
            or len(images) > 1
            or not all(isinstance(u, str) for u in images)
        ):
            return "image_urls", "image_urls takes at most 1 URL"
        callback = body.get("callback_url")
        if callback is not None:
            parts = urlsplit(callback) if isinstance(callback, str) else None
            if (
                parts is None
                or len(callback) > 2048
                or not parts.hostname
                or not (
                    parts.scheme == "https"
                    or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
                )
            ):
                return "callback_url", "callback_url must be an HTTPS URL"
        return None

    def _new_task(self, body: dict[str, Any], price: Decimal, key: str | None) -> SimTask:
        now = time.time()
        task_id = f"task-unified-{int(now)}-{secrets.token_hex(4)}"
        config = self.config
        fail_code: str | None = None
        trigger = _FAIL_TRIGGER.search(body["prompt"])
        if trigger:
            fail_code = trigger[1]
        elif config.fail_next:
            fail_code = config.fail_next.pop(0)
        elif config.fail_rate and self._rng.random() < config.fail_rate:
            fail_code = self._rng.choice(config.fail_codes)
        curve: tuple[float, ...] = ()
        if config.progress_noise:
            rng = random.Random(task_id)  # one generator: eight independent segment weights
            weights = [rng.choice([0, 0, 0.3, 1, 1, 3, 6]) for _ in range(8)]
            total = sum(weights) or 1.0
            points = [0.0]
            for weight in weights:
                points.append(points[-1] + weight / total)
            curve = tuple(points)
        task = SimTask(
            id=task_id,
            model=body["model"],
            prompt=body["prompt"],
            aspect_ratio=body.get("aspect_ratio"),
            duration=body.get("duration"),
            image_urls=list(body.get("image_urls") or []),
            callback_url=body.get("callback_url"),
            created=int(now),
            started=self.clock(),
            seconds=max(config.task_seconds, 1e-3),
            estimated_time=max(1, round(config.task_seconds * config.estimate_error)),
            credits_reserved=price,
            fail_code=fail_code,
            idempotency_key=key,
            curve=curve,
        )
        self.tasks[task_id] = task
        self._open.add(task_id)
        self.reserved_credits += price
        if key:
            self._idempotency[key] = task_id
        return task

    async def _get_task(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "task")) is not None:
            return early
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.json_response(
                error_body(400, "Invalid task id", code="invalid_task_id", param="task_id"),
                status=400,
            )
        return web.json_response(self.task_object(task, str(request.url.origin())))

    async def _credits(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "credits")) is not None:
            return early
        self.settle_due()
        return web.json_response(
            {
                "data": {
                    "token": {
                        "remaining_credits": _number(self.config.remaining_credits),
                        "unlimited_credits": self.config.unlimited_credits,
                        "used_credits": _number(self.used_credits),
                    },
                    "user": {"id": "sim-user", "user_group": "default"},
                },
                "success": True,
            }
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "download")) is not None:
            return early
        name = request.match_info["name"]
        task = self.tasks.get(name.removesuffix(".mp4"))
        if task is None or not name.endswith(".mp4") or self.state(task)[0] != "completed":
            return web.json_response(error_body(404, "File not found"), status=404)
        size = self.config.video_size
        if size is None:
            orientation = orientation_of(task.aspect_ratio)
            if orientation not in self._clips:
                self._clips[orientation] = clip_bytes(orientation)
            chunks: Iterator[bytes] = iter([self._clips[orientation]])
            size = len(self._clips[orientation])
        else:
            chunks = synthetic_video_chunks(size)
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = size
        await response.prepare(request)
        limit = size // 2 if request.get(_TRUNCATE) else size
        sent = 0
        for chunk in chunks:
            part = chunk[: limit - sent]
            await response.write(part)
            sent += len(part)
            if sent >= limit:
                break
        if sent < size and request.transport is not None:
            request.transport.close()  # promised Content-Length, then hung up
            return response
        await response.write_eof()
        return response


def run_simulator(port: int, task_seconds: float = 5.0) -> None:
    """Blocking entry point for `sora-bot simulator --port N [--task-seconds S]`."""

    async def main() -> None:
        config = SimulatorConfig(task_seconds=task_seconds)
        async with Simulator.serve(config, host="127.0.0.1", port=port) as sim:
            print(
                f"EvoLink simulator on {sim.base_url} (EVOLINK_BASE_URL={sim.base_url}); "
                f"tasks take {task_seconds:g} s. Ctrl-C stops it.",
                flush=True,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            if sys.platform != "win32":  # the Windows event loop has no signal handlers
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(signum, stop.set)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


__all__ = [
    "FAULTS",
    "CallbackAttempt",
    "RecordedRequest",
    "SimTask",
    "Simulator",
    "SimulatorConfig",
    "clip_bytes",
    "orientation_of",
    "run_simulator",
    "synthetic_video_chunks",
]
