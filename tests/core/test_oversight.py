"""Budget holders' tools on the real core: approvals, alerts, the account guard, role limits."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bot.domain.errors import BudgetError, JobStateError, PermissionDenied
from bot.domain.models import Balance, Requester, Surface, to_uc
from bot.infra.simulator import Simulator
from bot.services.alerts import AccountBalanceError, Alert
from bot.services.approvals import Approval
from tests.conftest import ALICE, BOB
from tests.prices import LONG, LONGEST, UNIT
from tests.support import RecordingPort, RunningCore

ADMIN = Requester(platform="test", workspace="W1", user="boss")
ADMIN2 = Requester(platform="test", workspace="W1", user="boss2")


class AdminRecordingPort(RecordingPort):
    """A RecordingPort that also implements the AdminPort."""

    def __init__(self) -> None:
        super().__init__("test")
        self.asked: list[tuple[Approval, Balance]] = []
        self.decided: list[Approval] = []
        self.alerts: list[Alert] = []

    async def on_approval_requested(self, approval: Approval, balance: Balance) -> None:
        self.asked.append((approval, balance))

    async def on_approval_decided(self, approval: Approval) -> None:
        self.decided.append(approval)

    async def on_admin_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


@pytest.fixture
def port() -> RecordingPort:
    return AdminRecordingPort()


@pytest.fixture
def core_settings(database_url: str) -> dict[str, object]:
    return {
        "database_url": database_url,  # each engine
        "user_credits_per_period": str(LONG * 4 / 3),  # one long request fits, two do not
        "admin_user_ids": "test:boss,test:boss2",
    }


async def test_two_admins_approving_at_once_grant_once(
    rc: RunningCore, port: AdminRecordingPort, sim: Simulator
) -> None:
    service = rc.core.service
    request = service.parse(f"a big one --duration {LONGEST}")
    assert service.quote(request) == LONG
    await service.submit(ALICE, request, Surface())  # a third of it left
    with pytest.raises(BudgetError):
        await service.submit(ALICE, request, Surface())
    approval = await service.ask_admin(ALICE, request, Surface(channel="C1"))
    assert port.asked and port.asked[0][0].id == approval.id
    assert port.asked[0][1].used + port.asked[0][1].held == LONG  # their spend

    results = await asyncio.gather(
        service.decide_approval(approval.id, ADMIN, True),
        service.decide_approval(approval.id, ADMIN2, True),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Approval)]
    losers = [r for r in results if isinstance(r, JobStateError)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already approved by test:boss" in str(losers[0])

    grants = await rc.core.store.fetchall("SELECT amount_uc FROM ledger WHERE kind = 'grant'")
    assert [g[0] for g in grants] == [to_uc(LONG)], "exactly that job's price, once"
    job = await service.get_job(winners[0].job_id or "")
    assert job.requester.user == "alice" and job.request == request
    await port.wait_for(job.id, "delivered", 15)
    assert [a.status for a in port.decided] == ["approved"]
    audit = [a["action"] for a in await service.audit_log()]
    assert audit == ["approve"]


async def test_deny_tells_the_requester_and_changes_no_budget(
    rc: RunningCore, port: AdminRecordingPort, sim: Simulator
) -> None:
    service = rc.core.service
    approval = await service.ask_admin(ALICE, service.parse(f"x --duration {LONGEST}"), Surface())
    with pytest.raises(PermissionDenied):
        await service.decide_approval(approval.id, BOB, True)
    denied = await service.decide_approval(approval.id, ADMIN, False)
    assert denied.status == "denied" and denied.job_id is None
    assert port.decided[-1].status == "denied"
    assert (await service.balance(ALICE)).granted == 0
    assert [r for r in sim.requests if r.kind == "submit"] == []
    with pytest.raises(JobStateError):
        await service.decide_approval(approval.id, ADMIN2, True)


async def test_requests_expire(rc: RunningCore, port: AdminRecordingPort) -> None:
    service = rc.core.service
    approval = await service.ask_admin(ALICE, service.parse("late"), Surface())
    async with rc.core.store.transaction() as tx:
        await tx.execute(
            "UPDATE approvals SET expires_at = '2000-01-01T00:00:00+00:00' WHERE id = ?",
            (approval.id,),
        )
    with pytest.raises(JobStateError, match="expired"):
        await service.decide_approval(approval.id, ADMIN, True)
    assert await service.oversight.expire_due() == 1
    assert (await service.get_approval(approval.id)).status == "expired"
    assert port.decided[-1].status == "expired"
    assert await service.oversight.expire_due() == 0


@pytest.mark.parametrize(
    "core_settings",
    [{"user_credits_per_period": str(UNIT * 40), "team_credits_per_period": str(UNIT * 4)}],
)
async def test_thresholds_alert_once_per_period(rc: RunningCore, port: AdminRecordingPort) -> None:
    service = rc.core.service
    request = service.parse("tick")  # a quarter of the team's budget each
    for _ in range(4):  # 25%, 50%, 75%, 100% of the team's budget
        await service.submit(ALICE, request, Surface())
    with pytest.raises(BudgetError):
        await service.submit(BOB, request, Surface())
    await rc.core.tracker.wait_idle(15)
    team = [(a.kind, a.threshold) for a in port.alerts if a.kind == "team_budget"]
    assert team == [("team_budget", 50), ("team_budget", 80), ("team_budget", 100)]


@pytest.mark.parametrize(
    "core_settings", [{"user_credits_per_period": str(UNIT * 5 / 2), "admin_user_ids": "test:boss"}]
)
async def test_user_threshold_alert(rc: RunningCore, port: AdminRecordingPort) -> None:
    service = rc.core.service
    cheap = service.parse("small")  # 40% of the allowance
    await service.submit(ALICE, cheap, Surface())  # 40%
    assert [a.kind for a in port.alerts] == []
    await service.submit(ALICE, cheap, Surface())  # 80%
    user_alerts = [a for a in port.alerts if a.kind == "user_budget"]
    assert len(user_alerts) == 1 and user_alerts[0].threshold == 80
    assert "alice" in user_alerts[0].text


@pytest.mark.parametrize("core_settings", [{"user_credits_per_period": "1000"}])
async def test_account_guard_refuses_and_alerts_admins_once(
    rc: RunningCore, port: AdminRecordingPort, sim: Simulator
) -> None:
    sim.config.remaining_credits = UNIT + Decimal("0.5")
    rc.core.service.oversight.guard.forget()
    service = rc.core.service
    await service.submit(ALICE, service.parse("fits"), Surface())  # 0.5 left after it
    for _ in range(2):
        with pytest.raises(AccountBalanceError) as refused:
            await service.submit(BOB, service.parse("too much"), Surface())
        assert "EvoLink account has 0.5 credits left" in str(refused.value)
    assert [a.kind for a in port.alerts] == ["account_balance"]
    await sim.wait_for_request(lambda r: r.kind == "submit")  # the one that fitted
    await rc.core.tracker.wait_idle(10)
    await sim.wait_for_request(lambda r: r.kind == "submit")  # the one job that fit
    assert len(await rc.core.store.fetchall("SELECT id FROM jobs")) == 1  # the refused: none
    submits = [r for r in sim.requests if r.kind == "submit"]
    assert len(submits) == 1
    assert (await service.balance(BOB)).held == 0


@pytest.mark.parametrize("core_settings", [{"user_credits_per_period": "5"}])
async def test_role_allowances_highest_applies_and_user_limit_beats_roles(
    rc: RunningCore,
) -> None:
    service = rc.core.service
    await service.set_role_limit("cli:test", "test", "W1", "artists", "50")
    await service.set_role_limit("cli:test", "test", "W1", "interns", "10")
    carol = Requester(platform="test", workspace="W1", user="carol", roles=("interns", "artists"))
    assert (await service.balance(carol)).limit == 50
    dave = Requester(platform="test", workspace="W1", user="dave", roles=("interns",))
    assert (await service.balance(dave)).limit == 10
    assert (await service.balance(ALICE)).limit == 5
    await service.set_limit("cli:test", carol, "7")
    assert (await service.balance(carol)).limit == 7
    with pytest.raises(PermissionDenied):
        await service.set_role_limit(BOB, "test", "W1", "artists", "1000")


@pytest.mark.parametrize("core_settings", [{"user_credits_per_period": "5"}])
async def test_roles_travel_with_the_job(rc: RunningCore, port: AdminRecordingPort) -> None:
    """A role member's finished job is measured against the role allowance (no false alert)."""
    service = rc.core.service
    await service.set_role_limit("cli:test", "test", "W1", "artists", "50")
    carol = Requester(platform="test", workspace="W1", user="carol", roles=("artists",))
    await service.set_role_limit("cli:test", "test", "W1", "artists", str(UNIT * 10))
    job = await service.submit(carol, service.parse("a mural"), Surface())
    assert (await service.get_job(job.id)).requester.roles == ("artists",)
    delivered = await port.wait_for(job.id, "delivered", 15)
    assert delivered.balance is not None and delivered.balance.available == UNIT * 9
    await rc.core.tracker.wait_idle(5)
    assert [a for a in port.alerts if a.kind == "user_budget"] == []


async def test_pending_requests_are_shown_to_admins_of_their_workspace_only(
    rc: RunningCore, port: AdminRecordingPort
) -> None:
    service = rc.core.service
    asked = await service.ask_admin(ALICE, service.parse("a boat"), Surface())
    other_admin = Requester(platform="test", workspace="W2", user="mia", workspace_admin=True)
    with pytest.raises(PermissionDenied):
        await service.pending_approvals(ALICE, "test", "W1")  # not an admin
    with pytest.raises(PermissionDenied):
        await service.pending_approvals(other_admin, "test", "W1")  # admin of another one
    assert await service.pending_approvals(other_admin, "test", "W2") == []
    mine = Requester(platform="test", workspace="W1", user="ned", workspace_admin=True)
    assert [a.id for a in await service.pending_approvals(mine, "test", "W1")] == [asked.id]
