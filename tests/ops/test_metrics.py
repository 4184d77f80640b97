"""`GET /metrics` after real flows: it parses strictly, and every number equals what the store,
the ledger (through the core's own balance code), the simulator and the platforms saw."""

from __future__ import annotations

import logging
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.models import JobStatus, Surface
from bot.infra.simulator import Simulator
from tests.adapters.discord.conftest import bot_on
from tests.adapters.discord.fake_discord import FakeDiscord
from tests.adapters.discord.helpers import ALICE as DISCORD_ALICE
from tests.adapters.discord.helpers import INTEGER, eventually, opt, sora_options
from tests.adapters.slack.conftest import slack_bot_on
from tests.adapters.slack.fake_slack import FakeSlack, form_headers, slash_command_body
from tests.conftest import ALICE, BOB
from tests.ops.exposition import Exposition, parse
from tests.prices import LONGEST
from tests.support import RecordingPort, RunningCore

WAIT = 10.0


async def scrape(base_url: str) -> Exposition:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
        http.get(f"{base_url}/metrics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await resp.text())


async def test_metrics_equal_the_store_after_a_real_flow(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    service = rc.core.service
    sim.config.http_errors = {"batch": [500]}  # one failed status read, retried by the client

    delivered = await service.submit(ALICE, service.parse("a paper boat"), Surface())
    await port.wait_for(delivered.id, "delivered")

    sim.config.fail_next.append("service_error")
    failed = await service.submit(BOB, service.parse(f"a lighthouse -d {LONGEST}"), Surface())
    await port.wait_for(failed.id, "failed")

    cancelled = await service.submit(BOB, service.parse("a storm"), Surface())
    await service.cancel(cancelled.id, BOB)
    await port.wait_for(cancelled.id, "cancelled")

    sim.config.task_seconds = 120.0  # stays in flight, holding credits, while we scrape
    running = await service.submit(ALICE, service.parse(f"a slow sunset -d {LONGEST}"), Surface())
    await port.wait_for(running.id, "progress")  # the first progress event: EvoLink has it

    metrics = await scrape(rc.base_url)

    jobs = (delivered, failed, cancelled, running)
    statuses = Counter([(await service.get_job(j.id)).status.value for j in jobs])
    assert statuses == {"delivered": 1, "failed": 1, "cancelled": 1, "submitted": 1}
    for status in JobStatus:
        assert metrics.value("sora_jobs", status=status.value) == statuses.get(status.value, 0)
    assert metrics.value("sora_jobs_in_flight") == rc.core.tracker.in_flight == 1

    alice, bob = await service.balance(ALICE), await service.balance(BOB)
    held = alice.held + bob.held
    used = alice.used + bob.used
    assert held == running.reserved > 0
    assert used == (await service.get_job(delivered.id)).charged > 0
    for period in ("current", "all"):  # one period so far: both views agree
        assert Decimal(str(metrics.value("sora_credits_held", period=period))) == held
        assert Decimal(str(metrics.value("sora_credits_captured", period=period))) == used

    # Status reads go out as batch reads (bot/services/task_reader.py); single reads only when
    # a batch left a task out, so "task" may be 0 but must still agree.
    for kind in ("submit", "batch", "download"):
        assert metrics.value("sora_evolink_requests_total", kind=kind) == sim.counts[kind] > 0
    assert metrics.value("sora_evolink_requests_total", kind="task") == sim.counts["task"]
    assert metrics.value("sora_evolink_requests_total", kind="credits") == sim.counts["credits"]
    assert metrics.value("sora_evolink_errors_total", reason="500") == 1
    assert metrics.value("sora_tracker_events_total", event="delivered") == 1
    assert metrics.types["sora_ack_latency_seconds"] == "histogram"


async def test_slack_acknowledgements_are_timed(tmp_path: Path, sim: Simulator) -> None:
    async with FakeSlack() as fake, slack_bot_on(fake, tmp_path, sim) as world:
        round_trips = 0.0
        for text in ("a paper boat", "help"):
            started = time.perf_counter()
            status, _ = await world.command(text)
            round_trips += time.perf_counter() - started
            assert status == 200
        forged = slash_command_body("a forged one", user="U0EVE", channel="C0GENERAL")
        headers = form_headers(forged)
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
        status, _ = await world.post(forged, headers)
        assert status == 401

        metrics = await scrape(world.rc.base_url)
        assert metrics.value("sora_ack_latency_seconds_count", platform="slack") == 2
        measured = metrics.value("sora_ack_latency_seconds_sum", platform="slack")
        # Server-side time is inside each client round trip.
        assert 0 < measured <= round_trips
        assert metrics.value("sora_ack_latency_seconds_bucket", platform="slack", le="3.0") == 2
        assert ("sora_ack_latency_seconds_count", frozenset({("platform", "discord")})) not in (
            metrics.samples
        )
        await world.runtime.idle()


async def test_discord_acknowledgements_are_timed_and_autocomplete_is_not(
    tmp_path: Path, sim: Simulator
) -> None:
    async with FakeDiscord() as fake:
        fake.add_guild()
        async with bot_on(fake, tmp_path, sim) as world:
            where = {"guild_id": world.guild_id, "channel_id": world.channel_id}
            started = time.perf_counter()
            command = await fake.slash(
                "sora", sora_options("a paper boat"), user=DISCORD_ALICE, **where
            )
            credits = await fake.slash("sora-credits", [], user=DISCORD_ALICE, **where)

            async def answered() -> bool:
                return command.callback is not None and credits.callback is not None

            await eventually(answered)
            elapsed = time.perf_counter() - started
            suggest = await fake.slash(
                "sora",
                [opt("prompt", "a boat"), {**opt("duration", "", INTEGER), "focused": True}],
                user=DISCORD_ALICE,
                autocomplete=True,
                **where,
            )

            async def counted() -> bool:
                metrics = await scrape(world.rc.base_url)
                key = ("sora_ack_latency_seconds_count", frozenset({("platform", "discord")}))
                return metrics.samples.get(key) == 2

            await eventually(counted)

            async def suggested() -> bool:
                return suggest.callback is not None

            await eventually(suggested)  # answered by the bot, yet not an acknowledgement
            metrics = await scrape(world.rc.base_url)
            assert metrics.value("sora_ack_latency_seconds_count", platform="discord") == 2
            measured = metrics.value("sora_ack_latency_seconds_sum", platform="discord")
            assert 0 < measured <= 2 * elapsed


async def test_metrics_token_guards_the_endpoint(tmp_path: Path, sim: Simulator) -> None:
    import aiohttp

    from tests.support import running_core

    async with (
        running_core(tmp_path, sim, metrics_token="scrape-me") as rc,
        aiohttp.ClientSession() as http,
    ):
        url = rc.base_url + "/metrics"
        async with http.get(url) as bare:
            assert bare.status == 401
        async with http.get(url, headers={"Authorization": "Bearer wrong"}) as wrong:
            assert wrong.status == 401
        async with http.get(url, headers={"Authorization": "Bearer scrape-me"}) as right:
            assert right.status == 200 and "sora_jobs" in await right.text()


async def test_a_public_server_without_a_token_keeps_metrics_closed(
    tmp_path: Path, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """PUBLIC_BASE_URL on a real host and no METRICS_TOKEN: /metrics is 404 for everyone, and
    the start-up log tells the operator how to open it; the rest of the server still serves."""
    from tests.support import running_core

    caplog.set_level(logging.WARNING, logger="bot.web")
    async with (
        running_core(tmp_path, sim, public_base_url="https://bot.example.com") as rc,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(rc.base_url + "/metrics") as bare:
            assert bare.status == 404
            assert "sora_jobs" not in await bare.text()
        headers = {"Authorization": "Bearer anything"}
        async with http.get(rc.base_url + "/metrics", headers=headers) as guessed:
            assert guessed.status == 404
        async with http.get(rc.base_url + "/healthz") as health:
            assert health.status == 200
    told = [r.getMessage() for r in caplog.records if "/metrics" in r.getMessage()]
    assert len(told) == 1 and "METRICS_TOKEN" in told[0] and "Bearer" in told[0]


async def test_a_public_server_with_a_token_serves_metrics_to_the_token(
    tmp_path: Path, sim: Simulator
) -> None:
    from tests.support import running_core

    async with (
        running_core(
            tmp_path, sim, public_base_url="https://bot.example.com", metrics_token="scrape-me"
        ) as rc,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(rc.base_url + "/metrics") as bare:
            assert bare.status == 401
        headers = {"Authorization": "Bearer scrape-me"}
        async with http.get(rc.base_url + "/metrics", headers=headers) as right:
            assert right.status == 200 and "sora_jobs" in await right.text()


def test_metrics_are_open_only_where_the_server_is_not_public() -> None:
    from tests.support import make_settings

    def closed(**values: Any) -> bool:
        return make_settings(Path("/nonexistent"), "http://127.0.0.1:1", **values).metrics_closed

    assert not closed()  # no PUBLIC_BASE_URL: nobody outside is told the address
    assert not closed(public_base_url="http://127.0.0.1:8080")
    assert not closed(public_base_url="http://localhost:8080")
    assert closed(public_base_url="https://bot.example.com")
    assert not closed(public_base_url="https://bot.example.com", metrics_token="t")
