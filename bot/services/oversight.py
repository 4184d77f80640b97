"""Oversight: the budget holders' side of the core — approvals, alerts, the account guard.

SoraService delegates here; adapters never call this module directly. Admin-facing messages
go to the platform's `AdminPort` (bot/services/port.py) when the port implements it.

Invariants: see bot/services/approvals.py (one decision per approval) and bot/services/alerts.py
(one alert per threshold per period). Notifications are best-effort and never undo a recorded
decision. The requester is told each decision once (`told_at`), by whichever process runs
their platform: the deciding one at once, else the running bot within PICKUP_EVERY seconds
(`tell_untold`) — a decision from the CLI, which has no platform, included.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal

from bot.domain.errors import AccountBalanceError, ApprovalNotFound, JobStateError
from bot.domain.models import Job, JobStatus, Requester, Surface, VideoRequest, to_uc
from bot.infra.store import approval_rows
from bot.services import approvals
from bot.services.alerts import (
    ACCOUNT_SCOPE,
    AccountGuard,
    Alert,
    account_alert,
    account_spend_alert,
    crossed_thresholds,
)
from bot.services.approvals import Approval
from bot.services.jobs import JobBook
from bot.services.port import AdminPort
from bot.services.tracker import Tracker

log = logging.getLogger(__name__)

#: How often a running bot looks for work another process decided (`sora-bot admin approve`):
#: approved jobs waiting in the queue, decisions nobody told the requester yet.
PICKUP_EVERY = 2.0
UNTOLD_LOOKBACK = dt.timedelta(hours=24)
UNTOLD_RETRY = 60.0  # seconds before a failed telling is tried again


class Oversight:
    def __init__(
        self, book: JobBook, tracker: Tracker, guard: AccountGuard, approval_ttl: dt.timedelta
    ) -> None:
        self.book = book
        self.tracker = tracker
        self.guard = guard
        self.approval_ttl = approval_ttl
        self._telling: set[str] = set()  # approvals whose decision is being told right now
        self._retry_after: dict[str, float] = {}  # approval → monotonic time of the next try

    def admin_port(self, platform: str) -> AdminPort | None:
        port = self.tracker.ports.get(platform)
        return port if isinstance(port, AdminPort) else None

    # -- alerts ------------------------------------------------------------------------------

    async def check_account(self, who: Requester, quote: Decimal) -> None:
        try:
            await self.guard.check(quote)
        except AccountBalanceError as exc:
            await self._alert_once_today(who, account_alert(who, exc.message))
            raise

    async def after_spend(self, who: Requester) -> None:
        """Spend changed for `who` (a hold or a capture): send newly crossed thresholds."""
        ledger = self.book.ledger
        async with self.book.store.transaction() as tx:
            # The workspace's own period and budgets (bot/services/workspace_settings.py).
            settings = await ledger.settings_in(tx, who.platform, who.workspace)
            period = ledger.period_at(settings)
            mine = await ledger.figures_in(tx, who, period, settings)
            team = await ledger.team_figures_in(tx, who.platform, who.workspace, period, settings)
            due = await crossed_thresholds(tx, who, period.key, mine, team)
        for alert in due:
            await self.send_alert(alert)

    async def after_job(self, job: Job) -> None:
        """The tracker's finish hook (subscribed by `bot.app.build_core`): a delivered job's
        capture may cross a budget threshold."""
        if job.status == JobStatus.DELIVERED:
            await self.after_spend(job.requester)

    async def alert_account_spend(self, text: str) -> None:
        """EvoLink billed more than the ledger explains: tell each platform's admins, once a
        day per platform (the same once-a-day claim as the balance alert)."""
        for platform in sorted(self.tracker.ports):
            who = Requester(platform=platform, workspace=ACCOUNT_SCOPE, user="")
            await self._alert_once_today(who, account_spend_alert(platform, text))

    async def _alert_once_today(self, who: Requester, alert: Alert) -> None:
        async with self.book.store.transaction() as tx:
            fresh = await approval_rows.claim_alert(
                tx, who, "", dt.date.today().isoformat(), alert.kind, 0
            )
        if fresh:
            await self.send_alert(alert)

    async def send_alert(self, alert: Alert) -> None:
        log.warning("budget alert for %s:%s: %s", alert.platform, alert.workspace, alert.text)
        port = self.admin_port(alert.platform)
        if port is None:
            return
        try:
            await port.on_admin_alert(alert)
        except Exception:
            log.exception("could not deliver an admin alert")

    # -- approvals ---------------------------------------------------------------------------

    async def ask(
        self, who: Requester, request: VideoRequest, quote: Decimal, surface: Surface
    ) -> Approval:
        async with self.book.store.transaction() as tx:
            approval_id = await approvals.insert(
                tx, who, request, surface, to_uc(quote), self.approval_ttl
            )
        approval = await self.get(approval_id)
        port = self.admin_port(who.platform)
        if port is not None:
            try:
                await port.on_approval_requested(approval, await self.book.ledger.balance(who))
            except Exception:
                log.exception("approval %s: could not reach the admins", approval_id)
        return approval

    async def get(self, approval_id: str) -> Approval:
        async with self.book.store.reading() as tx:
            approval = await approvals.get(tx, approval_id)
        if approval is None:
            raise ApprovalNotFound(f"There is no request {approval_id!r}.")
        return approval

    async def pending(self, platform: str | None = None) -> list[Approval]:
        async with self.book.store.reading() as tx:
            return await approvals.pending(tx, platform)

    async def decide(
        self, approval_id: str, actor: str, approve: bool, reason: str = ""
    ) -> Approval:
        """Record the one decision that counts; `reason` (the admin's words) joins the audit."""
        approval = await self.get(approval_id)
        verdict = "approved" if approve else "denied"
        why = f": {reason}" if reason else ""
        async with self.book.store.transaction() as tx:
            won = await approvals.decide(tx, approval_id, verdict, actor)
            if won and approve:
                price_uc = to_uc(approval.price)
                await self.book.ledger.grant_in(
                    tx,
                    actor,
                    approval.requester,
                    price_uc,
                    f"approved request {approval_id}{why}",
                    action="approve",
                )
                job_id = await self.book.accept_in(
                    tx,
                    approval.requester,
                    approval.request,
                    approval.surface,
                    approval.price,
                    force=True,
                )
                await approval_rows.link_job(tx, approval_id, job_id)
            elif won:
                await self.book.ledger.audit_in(
                    tx,
                    actor,
                    "deny",
                    approval.requester.key,
                    to_uc(approval.price),
                    f"denied request {approval_id}{why}",
                )
        decided = await self.get(approval_id)
        if not won:
            if decided.status == "pending":  # still pending, so it had expired
                raise JobStateError("This request has expired; ask again if it is still needed.")
            by = f" by {decided.decided_by}" if decided.decided_by else ""
            raise JobStateError(f"This request was already {decided.status}{by}.")
        log.info("approval %s: %s by %s", approval_id, verdict, actor)
        if approve:
            self.tracker.dispatch_soon()
            await self.after_spend(approval.requester)
        await self._tell_requester(decided)
        return decided

    async def save_admin_refs(self, approval_id: str, refs: dict[str, str]) -> None:
        async with self.book.store.transaction() as tx:
            await approval_rows.save_admin_refs(tx, approval_id, refs)

    async def expire_due(self) -> int:
        """Expire pending approvals past their time and tell the requesters."""
        async with self.book.store.reading() as tx:
            due = await approval_rows.due(tx)
        count = 0
        for approval_id in due:
            async with self.book.store.transaction() as tx:
                changed = await approval_rows.expire(tx, approval_id)
            if changed:
                count += 1
                await self._tell_requester(await self.get(approval_id))
        return count

    async def withdraw_workspace(self, platform: str, workspace: str) -> int:
        """The bot left the workspace: its pending approvals expire untold (nobody there can be
        reached, and approving one would start a job nobody could receive). How many."""
        withdrawn = 0
        for approval in await self.pending(platform):
            if approval.requester.workspace != workspace:
                continue
            async with self.book.store.transaction() as tx:
                if await approval_rows.expire(tx, approval.id):
                    await approval_rows.mark_told(tx, approval.id)
                    withdrawn += 1
        if withdrawn:
            log.info("%s:%s: %d pending approval(s) withdrawn", platform, workspace, withdrawn)
        return withdrawn

    async def tell_untold(self) -> int:
        """Tell the requesters of decisions (and expiries) of the last UNTOLD_LOOKBACK that
        nobody told yet — a decision made by `sora-bot admin approve`, whose process has no
        platform, or one whose telling failed. The running bot calls this every
        PICKUP_EVERY seconds; returns how many were told."""
        since = dt.datetime.now(dt.UTC) - UNTOLD_LOOKBACK
        async with self.book.store.reading() as tx:
            due = await approval_rows.untold(tx, since.isoformat(timespec="milliseconds"))
        told = 0
        for approval_id in due:
            if time.monotonic() < self._retry_after.get(approval_id, 0.0):
                continue
            approval = await self.get(approval_id)
            if self.admin_port(approval.requester.platform) is None:
                continue  # told by the process that runs that platform
            told += await self._tell_requester(approval)
        return told

    async def _tell_requester(self, approval: Approval) -> bool:
        """Tell the requester once: claimed in this process while telling, `told_at` once the
        platform took it. Without the platform here the decision stays untold for the
        process that has it (`tell_untold`)."""
        port = self.admin_port(approval.requester.platform)
        if port is None or approval.id in self._telling:
            return False
        self._telling.add(approval.id)
        try:
            async with self.book.store.reading() as tx:
                current = await approvals.get(tx, approval.id)
            if current is None or current.told_at is not None:
                return False
            try:
                await port.on_approval_decided(approval)
            except Exception:
                self._retry_after[approval.id] = time.monotonic() + UNTOLD_RETRY
                log.exception("approval %s: could not tell the requester", approval.id)
                return False
            self._retry_after.pop(approval.id, None)
            async with self.book.store.transaction() as tx:
                await approval_rows.mark_told(tx, approval.id)
            return True
        finally:
            self._telling.discard(approval.id)
