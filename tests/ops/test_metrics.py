"""`GET /metrics` after real flows: it parses strictly, and every number equals what the store,
the ledger (through the core's own balance code), the simulator and the platforms saw."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiohttp

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
    sim.config.http_errors = {"task": [500]}  # one failed status read, retried by the client

    delivered = await service.submit(ALICE, service.parse("a paper boat -d 10"), Surface())
    await port.wait_for(delivered.id, "delivered")

    sim.config.fail_next.append("service_error")
    failed = await service.submit(BOB, service.parse("a lighthouse -d 15"), Surface())
    await port.wait_for(failed.id, "failed")

    cancelled = await service.submit(BOB, service.parse("a storm"), Surface())
    await service.cancel(cancelled.id, BOB)
    await port.wait_for(cancelled.id, "cancelled")

    sim.config.task_seconds = 120.0  # stays in flight, holding credits, while we scrape
    running = await service.submit(ALICE, service.parse("a slow sunset -d 15"), Surface())
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

    for kind in ("submit", "task", "download"):
        assert metrics.value("sora_evolink_requests_total", kind=kind) == sim.counts[kind] > 0
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
