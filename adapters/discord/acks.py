"""Acknowledgement latency of Discord interactions (`sora_ack_latency_seconds{platform=
"discord"}`): from the INTERACTION_CREATE gateway event being parsed to the interaction
callback (defer, message or modal) being answered by Discord.

Invariants: observed through an aiohttp trace on the client's own HTTP session (one timer per
client: a shard's interactions are answered through that shard client's session), so every
handler is covered without touching any of them; autocomplete is not an acknowledgement and is
not counted; interactions never answered cannot grow the map past `ACK_PENDING_MAX`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import aiohttp
import yarl

from bot.services.interface import AckObserver

log = logging.getLogger(__name__)

AUTOCOMPLETE = 4  # interaction type: answered, but not an acknowledgement
CALLBACK_PATH = re.compile(r"/interactions/(\d+)/[^/]+/callback$")
ACK_PENDING_MAX = 1000  # interactions never answered (errors) must not grow the map forever


class AckTimer:
    """Interaction id → when it arrived; the callback's HTTP response closes the interval."""

    def __init__(self, metrics: AckObserver) -> None:
        self.metrics = metrics
        self.arrived: dict[str, float] = {}
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_end.append(self._on_request_end)
        self.trace.on_request_exception.append(self._on_request_exception)

    def wrap_parser(self, state: Any) -> None:
        """Time-stamp INTERACTION_CREATE before discord.py dispatches it."""
        parsers: dict[str, Any] | None = getattr(state, "parsers", None)
        original = parsers.get("INTERACTION_CREATE") if parsers is not None else None
        if parsers is None or original is None:
            log.warning("discord.py internals changed: acknowledgement latency not measured")
            return

        def parse_interaction_create(data: dict[str, Any]) -> None:
            if data.get("type") != AUTOCOMPLETE:
                if len(self.arrived) >= ACK_PENDING_MAX:
                    self.arrived.clear()
                self.arrived[str(data.get("id"))] = time.perf_counter()
            original(data)

        parsers["INTERACTION_CREATE"] = parse_interaction_create

    def _interaction_id(self, url: yarl.URL) -> str | None:
        match = CALLBACK_PATH.search(url.path)
        return match.group(1) if match else None

    async def _on_request_end(
        self, _session: aiohttp.ClientSession, _ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        interaction_id = self._interaction_id(params.url)
        if interaction_id is None:
            return
        arrived = self.arrived.pop(interaction_id, None)
        if arrived is not None and params.response.status < 400:
            self.metrics.observe_ack("discord", time.perf_counter() - arrived)

    async def _on_request_exception(
        self,
        _session: aiohttp.ClientSession,
        _ctx: Any,
        params: aiohttp.TraceRequestExceptionParams,
    ) -> None:
        interaction_id = self._interaction_id(params.url)
        if interaction_id is not None:
            self.arrived.pop(interaction_id, None)
