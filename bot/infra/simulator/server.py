"""The simulator's HTTP side: the routes EvoLink serves, faults, callbacks and result files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web

from bot.infra.simulator.prices import served
from bot.infra.simulator.tasks import TaskWorld
from bot.infra.simulator.world import (
    _TRUNCATE,
    FAULTS,
    CallbackAttempt,
    Clock,
    RecordedRequest,
    SimTask,
    SimulatorConfig,
    _number,
    clip_bytes,
    clip_for,
    error_body,
    orientation_of,
    synthetic_video_chunks,
)


class Simulator(TaskWorld):
    """The simulated service. Inspect `tasks`, `requests`, `counts` (requests per route kind,
    and `batch_ids`: task ids asked in batch reads), `task_reads` (reads per task id, single
    or batch) and `callbacks_sent` in tests and benchmarks."""

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
        self.task_reads: Counter[str] = Counter()
        self.callbacks_sent: list[CallbackAttempt] = []
        self.used_credits = Decimal(0)
        self.reserved_credits = Decimal(0)  # held by tasks not yet settled
        self._base_url: str | None = None
        self._idempotency: dict[str, str] = {}
        self._open: set[str] = set()  # tasks not yet settled
        self._rng = random.Random(self.config.seed)
        self._background: set[asyncio.Task[None]] = set()
        self._arrived = asyncio.Condition()  # notified as each request is recorded
        self._settled: dict[str, asyncio.Event] = {}  # waiters, by task, until it settles
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.add_routes(
            [
                web.post("/v1/videos/generations", self._submit),
                web.get("/v1/tasks/{task_id}", self._get_task),
                web.post("/v1/tasks/batch", self._get_tasks),
                web.get("/v1/credits", self._credits),
                web.get("/v1/catalog/pricing-rules", self._pricing_rules),
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

    def clip_of(self, task_id: str | None = None) -> bytes:
        """The clip `GET /files/{task}.mp4` serves for a task (None: the only one), for tests
        that compare what reached a user with what EvoLink served."""
        if task_id is None:
            (task,) = self.tasks.values()
        else:
            task = self.tasks[task_id]
        return clip_for(task.aspect_ratio, task.duration)

    async def wait_callbacks(self, timeout: float = 10.0) -> None:
        """Wait until every callback begun so far was delivered or given up on (retries and
        all): after this, `callbacks_sent` only grows when another task settles."""
        async with asyncio.timeout(timeout):
            while self._background:
                await asyncio.gather(*list(self._background), return_exceptions=True)

    async def wait_settled(self, task_id: str, timeout: float = 10.0) -> SimTask:
        """The task once it is settled (billed or released), whether or not anyone reads it:
        its timer settles it when it ends."""
        task = self.tasks[task_id]
        if not task.settled:
            event = self._settled.setdefault(task_id, asyncio.Event())
            async with asyncio.timeout(timeout):
                await event.wait()
        return task

    def _signal_settled(self, task_id: str) -> None:
        waiting = self._settled.pop(task_id, None)
        if waiting is not None:
            waiting.set()

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
        await self._record(request, kind)
        return self._fault_or_auth(request, kind)

    async def _record(self, request: web.Request, kind: str) -> RecordedRequest:
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
        recorded = RecordedRequest(
            kind, request.method, request.path, dict(request.query), headers, body
        )
        self.requests.append(recorded)
        self.counts[kind] += 1
        async with self._arrived:
            self._arrived.notify_all()
        return recorded

    def _fault_or_auth(self, request: web.Request, kind: str) -> web.StreamResponse | None:
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
        if kind not in ("download", "pricing"):  # both anonymous
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
        admitted = self._admit(body)
        if isinstance(admitted, tuple):
            param, message = admitted
            return web.json_response(error_body(400, message, param=param), status=400)
        price = admitted.price
        short = self.config.remaining_credits - self.reserved_credits < price
        if short and not self.config.unlimited_credits:
            return web.json_response(error_body(402), status=402)
        task = self._new_task(body, price, key, admitted)
        self._schedule(task, base_url)
        return web.json_response(self.task_object(task, base_url))

    async def _get_task(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "task")) is not None:
            return early
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.json_response(
                error_body(400, "Invalid task id", code="invalid_task_id", param="task_id"),
                status=400,
            )
        self.task_reads[task.id] += 1
        return web.json_response(self.task_object(task, str(request.url.origin())))

    async def _get_tasks(self, request: web.Request) -> web.StreamResponse:
        """`POST /v1/tasks/batch` (tasks.py `read_batch`); off, a 404 as for any unknown route."""
        recorded = await self._record(request, "batch")
        if not self.config.batch_reads:
            return web.json_response(error_body(404), status=404)
        if (early := self._fault_or_auth(request, "batch")) is not None:
            return early
        status, body = self.read_batch(recorded.json, str(request.url.origin()))
        return web.json_response(body, status=status)

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

    async def _pricing_rules(self, request: web.Request) -> web.StreamResponse:
        """The public price list (anonymous), as the knobs make it now (prices.py)."""
        if (early := await self._enter(request, "pricing")) is not None:
            return early
        return web.json_response(served(self.config)[0])

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if (early := await self._enter(request, "download")) is not None:
            return early
        name = request.match_info["name"]
        task = self.tasks.get(name.removesuffix(".mp4"))
        if task is None or not name.endswith(".mp4") or self.state(task)[0] != "completed":
            return web.json_response(error_body(404, "File not found"), status=404)
        size = self.config.video_size
        if size is None:
            clip = clip_for(task.aspect_ratio, task.duration)  # cached by clip_bytes
            chunks: Iterator[bytes] = iter([clip])
            size = len(clip)
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
    """Blocking entry point for `sora-bot simulator --port N [--task-seconds S]` (it refuses
    and bills as EvoLink does, see bot/infra/simulator/strict.py)."""

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
    "clip_for",
    "orientation_of",
    "run_simulator",
    "synthetic_video_chunks",
]
