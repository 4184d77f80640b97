"""Per-workspace settings through the service and across processes, on each engine: only a
workspace's admins read and change them, a request without a model gets the workspace's
default model, a removed workspace loses what costs nothing and keeps the rest, and a change on
one replica reaches the other's snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain.errors import JobStateError, PermissionDenied
from bot.domain.models import Job, JobStatus, Requester, Surface
from bot.infra.simulator import Simulator
from bot.infra.store import open_store
from tests.core.test_approval_pickup import AdminRecordingPort
from tests.core.test_workspace_settings import CATALOG, CLI, MODELS, audit_rows, book_for, change
from tests.support import RecordingPort, running_core, running_simulator, until

# -- through the service: who may, the default model, a removed workspace ------------------------

TEXT_MODELS = [m for m in MODELS if not CATALOG.get(m).image_required]


@pytest.fixture
async def slow_sim() -> AsyncIterator[Simulator]:
    async with running_simulator(task_seconds=4.0) as simulator:
        yield simulator


async def test_only_the_workspaces_admins_read_and_change_its_settings(
    tmp_path: Path, sim: Simulator, database_url: str
) -> None:
    async with running_core(
        tmp_path, sim, database_url=database_url, admin_user_ids="test:op"
    ) as rc:
        service = rc.core.service
        member = Requester(platform="test", workspace="W1", user="m")
        admin = Requester(platform="test", workspace="W1", user="a", workspace_admin=True)
        elsewhere = Requester(platform="test", workspace="W2", user="b", workspace_admin=True)
        operator = Requester(platform="test", workspace="W9", user="op")
        for who in (member, elsewhere):
            with pytest.raises(PermissionDenied):
                await service.workspace_settings(who, "test", "W1")
            with pytest.raises(PermissionDenied):
                await service.change_workspace_setting(who, "test", "W1", "budget_period", "week")
        await service.change_workspace_setting(admin, "test", "W1", "budget_period", "week")
        found = await service.change_workspace_setting(
            operator, "test", "W1", "max_jobs_per_user", "1"
        )
        assert found.overridden == {"budget_period", "max_jobs_per_user"}
        assert (await service.workspace_settings(admin, "test", "W1")) == found
        assert [(a, r) for a, _act, _t, r in await audit_rows(rc.core.store)] == [
            ("test:a", "budget_period=week"),
            ("test:op", "max_jobs_per_user=1"),
        ]


async def test_a_request_without_a_model_gets_its_workspaces_default_model(
    tmp_path: Path, sim: Simulator
) -> None:
    if len(TEXT_MODELS) < 2:
        pytest.skip("the price list offers one text model only")
    async with running_core(tmp_path, sim, default_model=TEXT_MODELS[0]) as rc:
        service = rc.core.service
        await service.change_workspace_setting(CLI, "test", "W1", "default_model", TEXT_MODELS[1])
        in_w1 = Requester(platform="test", workspace="W1", user="u")
        in_w2 = Requester(platform="test", workspace="W2", user="u")
        assert service.parse("a lighthouse", requester=in_w1).model == TEXT_MODELS[1]
        assert service.parse("a lighthouse", requester=in_w2).model == TEXT_MODELS[0]
        assert service.parse("a lighthouse").model == TEXT_MODELS[0]
        named = service.parse(f"a lighthouse --model {TEXT_MODELS[0]}", requester=in_w1)
        assert named.model == TEXT_MODELS[0], "a named model is kept"
        assert service.admin_channel("test", "W1") is None
        await service.change_workspace_setting(CLI, "test", "W1", "admin_channel", "ops-room")
        assert service.admin_channel("test", "W1") == "ops-room"


async def test_a_removed_workspace_loses_its_waiting_jobs_once_and_keeps_the_rest(
    tmp_path: Path, slow_sim: Simulator, database_url: str
) -> None:
    port = RecordingPort("test")
    async with running_core(
        tmp_path, slow_sim, ports=[port], database_url=database_url, max_jobs_per_user=1
    ) as rc:
        service = rc.core.service
        leaving = Requester(platform="test", workspace="GONE", user="u")
        staying = Requester(platform="test", workspace="KEPT", user="u")
        request = service.parse("a lighthouse", requester=leaving)
        quote = service.quote(request)
        finished = asyncio.Event()

        async def on_finished(job: Job) -> None:
            if job.id == running.id:
                finished.set()  # delivered and captured

        rc.core.tracker.on_finished.append(on_finished)
        running = await service.submit(leaving, request, Surface())
        waiting = [await service.submit(leaving, request, Surface()) for _ in range(2)]
        kept = [await service.submit(staying, request, Surface()) for _ in range(2)]
        await until(lambda: bool(slow_sim.tasks), within=10)  # the first is at EvoLink
        assert (await service.get_job(running.id)).task_id is not None

        seen = len(port.events)
        assert await service.workspace_removed("test", "GONE", "uninstalled") == 2
        assert await service.workspace_removed("test", "GONE", "uninstalled") == 0
        for job in waiting:
            assert (await service.get_job(job.id)).status == JobStatus.CANCELLED
        releases = await rc.core.store.fetchall(
            "SELECT job_id, COUNT(*) FROM ledger WHERE kind = 'release' GROUP BY job_id"
        )
        assert {r[0]: r[1] for r in releases} == {job.id: 1 for job in waiting}
        balance = await service.balance(leaving)
        assert balance.held == quote, "only the job at EvoLink still holds"
        for job in kept:
            assert (await service.get_job(job.id)).status != JobStatus.CANCELLED

        async with asyncio.timeout(30):
            await finished.wait()
        submitted = [r for r in slow_sim.requests if r.kind == "submit"]
        sent = {r.headers.get("Idempotency-Key") for r in submitted}
        assert sent.isdisjoint(j.id for j in waiting), "no EvoLink call for a cancelled job"
        told = [e for e in port.events[seen:] if e.job.id in {j.id for j in waiting}]
        assert told == [], "nothing is posted to a workspace the bot left"
        assert (await service.get_job(running.id)).status == JobStatus.DELIVERED
        assert (await service.balance(leaving)).held == 0


# -- the snapshot across processes ----------------------------------------------------------------


async def test_a_change_on_one_replica_reaches_the_others_snapshot(pg_url: str) -> None:
    """Two stores on one PostgreSQL database (two replicas): the `sora_settings` word makes the
    other replica read the workspace again — no restart, no stale minute."""
    first, second = await open_store(pg_url), await open_store(pg_url)
    try:
        here, there = book_for(first), book_for(second)
        await there.ledger.workspace_settings.start()
        assert there.ledger.workspace_settings.cached("t", "W").admin_channel is None
        await change(here, ("t", "W"), "admin_channel", "ops-room")
        await until(
            lambda: there.ledger.workspace_settings.cached("t", "W").admin_channel == "ops-room",
            within=5,
        )
    finally:
        await first.close()
        await second.close()


async def test_a_stale_snapshot_is_reloaded_when_a_word_was_lost(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that never heard the word (it does not listen here): its snapshot is reloaded
    in the background once older than STALE_SECONDS."""
    from bot.services import workspace_settings as owner_module

    first, second = await open_store(database_url), await open_store(database_url)
    try:
        writer, reader = book_for(first), book_for(second)
        await reader.ledger.workspace_settings.reload()
        await change(writer, ("t", "W"), "max_jobs_per_user", "5")
        assert reader.ledger.workspace_settings.cached("t", "W").max_jobs_per_user == 2
        monkeypatch.setattr(owner_module, "STALE_SECONDS", 0.0)
        await until(
            lambda: reader.ledger.workspace_settings.cached("t", "W").max_jobs_per_user == 5,
            within=5,
        )
        # Decisions never wait for the snapshot: they read the committed rows.
        async with second.reading() as tx:
            caps = await reader.ledger.workspace_settings.caps_in(tx, ["t:W", "t:other"])
        assert caps == {"t:W": (5, 8), "t:other": (2, 8)}
    finally:
        await first.close()
        await second.close()


async def test_a_removed_workspace_withdraws_its_pending_approvals_untold(
    tmp_path: Path, sim: Simulator, database_url: str
) -> None:
    """An uninstall (or a guild left) expires that workspace's "Ask an admin" requests without
    telling anyone (nobody there can be reached): no admin can then approve a job nobody could
    receive. Another workspace's requests stay pending."""
    port = AdminRecordingPort()
    async with running_core(
        tmp_path, sim, database_url=database_url, ports=[port], user_credits_per_period="0"
    ) as rc:
        service = rc.core.service
        leaving = Requester(platform="test", workspace="GONE", user="u")
        staying = Requester(platform="test", workspace="KEPT", user="u")
        gone = await service.ask_admin(leaving, service.parse("a big one"), Surface())
        kept = await service.ask_admin(staying, service.parse("a big one"), Surface())

        assert await service.workspace_removed("test", "GONE", "uninstalled") == 0
        withdrawn = await service.get_approval(gone.id)
        assert withdrawn.status == "expired"
        (told_at,) = (
            await rc.core.store.fetchall("SELECT told_at FROM approvals WHERE id = ?", (gone.id,))
        )[0]
        assert told_at is not None, "marked told: no sweep tells a workspace the bot left"
        with pytest.raises(JobStateError):
            await service.decide_approval(gone.id, "test:op", True)
        assert (await service.get_approval(kept.id)).status == "pending"
        grants = await rc.core.store.fetchall("SELECT 1 FROM ledger WHERE kind = 'grant'")
        assert grants == [], "nothing granted for the withdrawn request"
        assert port.decided == []
