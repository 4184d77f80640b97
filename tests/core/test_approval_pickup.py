"""A decision made by another process (`sora-bot admin approve`, which has no platform): the
running bot starts the approved job within a few seconds and tells the requester, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import build_core
from bot.domain.models import Balance, JobStatus, Requester, Surface
from bot.infra.simulator import Simulator
from bot.services.alerts import Alert
from bot.services.approvals import Approval, decision_summary
from bot.services.oversight import PICKUP_EVERY
from tests.support import RecordingPort, running_core

ALICE = Requester(platform="test", workspace="W1", user="alice")


class AdminRecordingPort(RecordingPort):
    def __init__(self) -> None:
        super().__init__("test")
        self.decided: list[Approval] = []
        self.told = asyncio.Event()

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        pass

    async def on_approval_decided(self, approval: Approval) -> None:
        self.decided.append(approval)
        self.told.set()

    async def on_admin_alert(self, alert: Alert) -> None:
        pass


async def test_an_approval_from_the_cli_is_picked_up_and_told_once(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    port = AdminRecordingPort()
    async with running_core(
        tmp_path, sim, database_url=database_url, ports=[port], user_credits_per_period="0"
    ) as rc:
        service = rc.core.service
        approval = await service.ask_admin(ALICE, service.parse("a big one"), Surface())

        # The CLI's process: the same database, no platform, no tracker running.
        cli = await build_core(rc.settings, require_key=False)
        try:
            decided = await cli.service.decide_approval(approval.id, "cli:ops", True)
        finally:
            await cli.stop()
        assert decided.status == "approved" and decided.job_id is not None
        summary = decision_summary(decided, PICKUP_EVERY)
        assert "queued and starts within" in summary and "started" not in summary

        # The running bot tells the requester and starts the job, within a few pickups.
        async with asyncio.timeout(4 * PICKUP_EVERY):
            await port.told.wait()
            await port.wait_for(decided.job_id, "delivered")
            await rc.core.tracker.wait_idle(5)  # delivered is recorded after the port returns
        assert [a.id for a in port.decided] == [approval.id]
        assert port.decided[0].status == "approved"
        assert (await service.get_job(decided.job_id)).status == JobStatus.DELIVERED

        # Told exactly once, however many sweeps run afterwards.
        assert await rc.core.service.oversight.tell_untold() == 0
        told = await service.get_approval(approval.id)
        assert told.told_at is not None
    assert len(port.decided) == 1


async def test_a_decision_in_the_running_bot_is_told_once_not_again_by_the_sweep(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    port = AdminRecordingPort()
    async with running_core(
        tmp_path,
        sim,
        database_url=database_url,
        ports=[port],
        user_credits_per_period="0",
        admin_user_ids="test:boss",
    ) as rc:
        service = rc.core.service
        approval = await service.ask_admin(ALICE, service.parse("no thanks"), Surface())
        boss = Requester(platform="test", workspace="W1", user="boss")
        await service.decide_approval(approval.id, boss, False)
        assert [a.status for a in port.decided] == ["denied"]
        assert await service.oversight.tell_untold() == 0
        assert (await service.get_approval(approval.id)).told_at is not None
    assert len(port.decided) == 1
