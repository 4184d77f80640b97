"""A job's whole life through the real core: SQLite file, simulator over HTTP, recording port."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from bot.domain.errors import BudgetError, JobStateError, PermissionDenied
from bot.domain.models import JobStatus, Surface, fmt_credits
from bot.domain.task_errors import TASK_ERRORS
from bot.infra.simulator import Simulator
from tests.conftest import ALICE, BOB
from tests.support import RecordingPort, RunningCore

DATA = Path(__file__).resolve().parents[2] / "bot" / "data"


def submits(sim: Simulator) -> list[object]:
    return [r for r in sim.requests if r.kind == "submit"]


async def test_happy_path_delivers_the_clip_and_captures_the_charge(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    service = rc.core.service
    spec = service.catalog.get(service.settings.default_model)
    longest = max(spec.durations)
    request = service.parse(f"a paper boat on a rainy street --duration {longest} --ar 9:16")
    quote = service.quote(request)  # from the price list's rules (tests/core/test_offer.py)
    job = await service.submit(ALICE, request, Surface(channel="C1"))
    assert job.status == JobStatus.PENDING
    assert job.reserved == quote > 0
    assert job.pricing_version == rc.core.prices.current.meta.pricing_version

    held = await service.balance(ALICE)
    assert held.held == quote

    delivered = await port.wait_for(job.id, "delivered")
    assert delivered.video is not None
    video_bytes = await asyncio.to_thread(Path(delivered.video.path).read_bytes)
    assert delivered.video.source_url is not None
    async with httpx.AsyncClient() as http:  # what the simulator serves for this task
        assert video_bytes == (await http.get(delivered.video.source_url)).content
    assert delivered.video.hosted_url is not None and "/media/" in delivered.video.hosted_url

    await rc.core.tracker.wait_idle(5)
    final = await service.get_job(job.id)
    assert final.status == JobStatus.DELIVERED
    task = sim.tasks[final.task_id or ""]
    assert final.charged == task.credits_reserved == quote  # usage.credits_used
    after = await service.balance(ALICE)
    assert after.held == 0
    assert after.used == final.charged
    # the balance handed to the port already shows the charge
    assert delivered.balance is not None and delivered.balance.available == after.available

    sent = submits(sim)
    assert len(sent) == 1
    body = sent[0].json  # type: ignore[attr-defined]
    assert body["model"] == spec.name and body["duration"] == longest
    assert body["aspect_ratio"] == spec.normalize_ratio("9:16")
    assert body["prompt"] == "a paper boat on a rainy street"
    assert body["callback_url"].startswith(rc.base_url + "/evolink/callback/")
    assert sent[0].headers["Idempotency-Key"] == job.id  # type: ignore[attr-defined]


async def test_progress_reaches_the_port_only_when_it_changes(
    rc: RunningCore, port: RecordingPort
) -> None:
    job = await rc.core.service.submit(ALICE, rc.core.service.parse("a lighthouse"), Surface())
    await port.wait_for(job.id, "delivered")
    seen = [(e.job.status, e.job.progress) for e in port.of(job.id, "progress")]
    assert seen, "at least the submitted event"
    assert len(seen) == len(set(seen)), f"duplicate progress events: {seen}"
    assert (JobStatus.DELIVERING, 100) in seen


@pytest.mark.parametrize("core_settings", [{"user_credits_per_period": "3"}])
async def test_over_budget_is_refused_and_sends_nothing(rc: RunningCore, sim: Simulator) -> None:
    service = rc.core.service
    request = service.parse("a cat")
    quote = service.quote(request)
    assert quote > 3
    with pytest.raises(BudgetError) as refused:
        await service.submit(ALICE, request, Surface())
    message = str(refused.value)
    assert fmt_credits(quote) in message and "3 credits left" in message and "resets" in message
    assert submits(sim) == []
    balance = await service.balance(ALICE)
    assert balance.held == 0 and balance.used == 0
    assert await rc.core.book.recent_jobs() == []


# A team budget of 1.5 default requests (the default model's cheapest: 23.04 × 1.5 = 34.56).
@pytest.mark.parametrize("core_settings", [{"team_credits_per_period": "34.56"}])
async def test_team_budget_caps_the_workspace(rc: RunningCore, sim: Simulator) -> None:
    service = rc.core.service
    one = service.parse("one")
    assert service.quote(one) * 2 > Decimal("34.56") >= service.quote(one)
    await service.submit(ALICE, one, Surface())
    with pytest.raises(BudgetError) as refused:
        await service.submit(BOB, service.parse("two"), Surface())
    assert refused.value.scope == "team"
    assert "team" in str(refused.value).lower()
    assert len(submits(sim)) <= 1


TASK_ERROR_CODES = list(TASK_ERRORS)


@pytest.mark.parametrize("code", TASK_ERROR_CODES)
async def test_each_task_error_code_fails_the_job_and_releases_the_hold(
    rc: RunningCore, port: RecordingPort, sim: Simulator, code: str
) -> None:
    sim.config.fail_next.append(code)
    service = rc.core.service
    job = await service.submit(ALICE, service.parse("a storm at sea"), Surface())
    failed = await port.wait_for(job.id, "failed")
    assert failed.reason and len(failed.reason) > 10 and code not in failed.reason
    final = await service.get_job(job.id)
    assert final.status == JobStatus.FAILED and final.error_code == code
    balance = await service.balance(ALICE)
    assert balance.held == 0 and balance.used == 0
    assert port.of(job.id, "delivered") == []


async def test_content_policy_failure_says_so_in_plain_words(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    sim.config.fail_next.append("content_policy_violation")
    job = await rc.core.service.submit(ALICE, rc.core.service.parse("x y z"), Surface())
    failed = await port.wait_for(job.id, "failed")
    assert failed.reason is not None and "policy" in failed.reason.lower()


async def test_cancel_is_for_the_requester_or_an_admin(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    service = rc.core.service
    # Alice's third job waits in line (two per user in flight): it has not reached EvoLink,
    # so it can be cancelled (one EvoLink has is not: tests/core/test_charges.py).
    frozen, running = sim.clock(), sim.clock
    sim.clock = lambda: frozen  # no task ends (so no slot frees) until the cancel is done
    try:
        for prompt in ("slow clouds", "slow rain"):
            await service.submit(ALICE, service.parse(prompt), Surface())
        job = await service.submit(ALICE, service.parse("slow snow"), Surface())
        with pytest.raises(PermissionDenied):
            await service.cancel(job.id, BOB)
        assert (await service.get_job(job.id)).status == JobStatus.PENDING
        cancelled = await service.cancel(job.id, ALICE)
    finally:
        sim.clock = running
    assert cancelled.status == JobStatus.CANCELLED
    await port.wait_for(job.id, "cancelled")
    await rc.core.tracker.wait_idle(10)
    assert port.of(job.id, "delivered") == []
    assert job.id not in {r.headers.get("Idempotency-Key") for r in sim.requests}  # never sent
    balance = await service.balance(ALICE)
    assert balance.held == 0 and balance.used == sum(
        (sim_task.credits_reserved for sim_task in sim.tasks.values()), Decimal(0)
    )
    with pytest.raises(JobStateError):
        await _cancel_delivered(rc, port)


async def _cancel_delivered(rc: RunningCore, port: RecordingPort) -> None:
    service = rc.core.service
    job = await service.submit(ALICE, service.parse("done already"), Surface())
    await port.wait_for(job.id, "delivered")
    await rc.core.tracker.wait_idle(5)
    await service.cancel(job.id, ALICE)


async def test_delivery_is_retried_until_the_platform_takes_it_and_recorded_once(
    rc: RunningCore, port: RecordingPort, sim: Simulator
) -> None:
    port.fail_deliveries = 1
    service = rc.core.service
    job = await service.submit(ALICE, service.parse("a kite"), Surface())
    await port.wait_for(job.id, "delivered", timeout=15)
    await rc.core.tracker.wait_idle(10)
    assert len(port.of(job.id, "delivered")) == 1
    downloads = [r for r in sim.requests if r.kind == "download"]
    assert len(downloads) == 1, "downloaded once even though the first delivery failed"
    assert (await service.get_job(job.id)).status == JobStatus.DELIVERED


async def test_again_makes_a_new_job_with_the_same_request(
    rc: RunningCore, port: RecordingPort
) -> None:
    service = rc.core.service
    longest = max(service.catalog.get(service.settings.default_model).durations)
    first = await service.submit(ALICE, service.parse(f"a fox --duration {longest}"), Surface())
    second = await service.again(first.id, BOB, Surface())
    assert second.id != first.id
    assert second.request == first.request
    assert second.requester == BOB and second.parent_job_id == first.id
    await port.wait_for(second.id, "delivered")
