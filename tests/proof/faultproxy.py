"""A fault-injecting HTTP proxy in front of the EvoLink simulator, for faults the simulator
cannot make itself: a server that never answers (client timeouts) and a TCP reset.

    async with FaultProxy.serve(sim) as proxy:       # proxy.base_url replaces sim.base_url
        proxy.faults["task"] = ["hang", "reset"]     # consumed one per request of that kind

Everything else is forwarded unchanged, with the proxy's own `Host`, so the task objects the
simulator answers name result links on the proxy too (downloads pass through it as well).
Kinds: `submit` (POST /v1/videos/generations), `task` (GET /v1/tasks/…), `download`
(GET /files/…), `other`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bot.infra.simulator import Simulator

HANG_SECONDS = 30.0  # far longer than any client timeout the tests set


def kind_of(path: str) -> str:
    if path == "/v1/videos/generations":
        return "submit"
    if path.startswith("/v1/tasks/"):
        return "task"
    if path.startswith("/files/"):
        return "download"
    return "other"


@dataclass
class FaultProxy:
    target: str
    faults: dict[str, list[str]] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (kind, fault or "ok")
    base_url: str = ""
    _session: aiohttp.ClientSession | None = None

    @classmethod
    @asynccontextmanager
    async def serve(cls, sim: Simulator) -> AsyncIterator[FaultProxy]:
        proxy = cls(sim.base_url)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy._forward)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        proxy._session = aiohttp.ClientSession(auto_decompress=False)
        try:
            yield proxy
        finally:
            await proxy._session.close()
            await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        kind = kind_of(request.path)
        queue = self.faults.get(kind)
        fault = queue.pop(0) if queue else "ok"
        self.seen.append((kind, fault))
        if fault == "hang":
            await asyncio.sleep(HANG_SECONDS)  # the client times out long before
        if fault == "reset":
            transport = request.transport
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:  # SO_LINGER 0: close() sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if transport is not None:
                transport.abort()
            return web.Response(status=500)  # never reaches the reset socket
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        headers["Host"] = request.host
        async with self._session.request(
            request.method,
            self.target + request.path_qs,
            headers=headers,
            data=await request.read() if request.can_read_body else None,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for name in ("Content-Type", "Retry-After", "idempotency-replayed"):
                if name in upstream.headers:
                    response.headers[name] = upstream.headers[name]
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(1 << 16):
                await response.write(chunk)
            await response.write_eof()
            return response
