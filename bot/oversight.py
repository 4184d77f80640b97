"""Oversight: the budget holders' side of the core — approvals, alerts, the account guard.

SoraService delegates here; adapters never call this module directly. Admin-facing messages
go to the platform's `AdminPort` (bot/port.py) when the port implements it.

Invariants: see bot/approvals.py (one decision per approval) and bot/alerts.py (one alert per
threshold per period). Notifications are best-effort and never undo a recorded decision.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

from bot import approvals, ledger
from bot.alerts import AccountGuard, Alert, account_alert, crossed_thresholds
from bot.approvals import Approval
from bot.errors import AccountBalanceError, ApprovalNotFound, JobStateError
from bot.jobs import JobBook
from bot.models import Job, JobStatus, Requester, Surface, VideoRequest, to_mc
from bot.port import AdminPort
from bot.store import now_iso
from bot.tracker import Tracker

log = logging.getLogger(__name__)


class Oversight:
    def __init__(
        self, book: JobBook, tracker: Tracker, guard: AccountGuard, approval_ttl: dt.timedelta
    ) -> None:
        self.book = book
        self.tracker = tracker
        self.guard = guard
        self.approval_ttl = approval_ttl
        tracker.on_finished.append(self._after_job)

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
        period = self.book.current_period()
        async with self.book.store.transaction() as tx:
            mine = await ledger.user_figures(tx, who, period, self.book.default_limit_mc)
            team = await ledger.team_figures(
                tx, who.platform, who.workspace, period, self.book.default_team_mc
            )
            due = await crossed_thresholds(tx, who, period.key, mine, team)
        for alert in due:
            await self.send_alert(alert)

    async def _after_job(self, job: Job) -> None:
        if job.status == JobStatus.DELIVERED:
            await self.after_spend(job.requester)

    async def _alert_once_today(self, who: Requester, alert: Alert) -> None:
        async with self.book.store.transaction() as tx:
            cur = await tx.execute(
                "INSERT OR IGNORE INTO alerts (platform, workspace, user, period_start, kind,"
                " threshold, at) VALUES (?, ?, '', ?, ?, 0, ?)",
                (who.platform, who.workspace, dt.date.today().isoformat(), alert.kind, now_iso()),
            )
            fresh = cur.rowcount == 1
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
                tx, who, request, surface, to_mc(quote), self.approval_ttl
            )
        approval = await self.get(approval_id)
        port = self.admin_port(who.platform)
        if port is not None:
            try:
                await port.on_approval_requested(approval, await self.book.balance(who))
            except Exception:
                log.exception("approval %s: could not reach the admins", approval_id)
        return approval

    async def get(self, approval_id: str) -> Approval:
        row = await self.book.store.fetchone(
            f"SELECT {approvals.COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
        )
        if row is None:
            raise ApprovalNotFound(f"There is no request {approval_id!r}.")
        return approvals.row_to_approval(row)

    async def pending(self, platform: str | None = None) -> list[Approval]:
        sql = f"SELECT {approvals.COLUMNS} FROM approvals WHERE status = 'pending'"
        params: tuple[str, ...] = ()
        if platform is not None:
            sql += " AND platform = ?"
            params = (platform,)
        rows = await self.book.store.fetchall(sql + " ORDER BY created_at", params)
        return [approvals.row_to_approval(r) for r in rows]

    async def decide(self, approval_id: str, actor: str, approve: bool) -> Approval:
        approval = await self.get(approval_id)
        verdict = "approved" if approve else "denied"
        period = self.book.current_period()
        async with self.book.store.transaction() as tx:
            won = await approvals.decide(tx, approval_id, verdict, actor)
            if won and approve:
                price_mc = to_mc(approval.price)
                reason = f"approved request {approval_id}"
                await ledger.add_grant(tx, approval.requester, price_mc, period, actor, reason)
                job_id = await self.book.accept_in(
                    tx,
                    approval.requester,
                    approval.request,
                    approval.surface,
                    approval.price,
                    force=True,
                )
                await tx.execute(
                    "UPDATE approvals SET job_id = ? WHERE id = ?", (job_id, approval_id)
                )
                await ledger.audit(tx, actor, "approve", approval.requester.key, price_mc, reason)
            elif won:
                await ledger.audit(
                    tx,
                    actor,
                    "deny",
                    approval.requester.key,
                    to_mc(approval.price),
                    f"denied request {approval_id}",
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
            await tx.execute(
                "UPDATE approvals SET admin_refs_json = ? WHERE id = ?",
                (json.dumps(refs), approval_id),
            )

    async def expire_due(self) -> int:
        """Expire pending approvals past their time and tell the requesters."""
        rows = await self.book.store.fetchall(
            "SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now_iso(),)
        )
        count = 0
        for (approval_id,) in rows:
            async with self.book.store.transaction() as tx:
                cur = await tx.execute(
                    "UPDATE approvals SET status = 'expired', decided_at = ?"
                    " WHERE id = ? AND status = 'pending'",
                    (now_iso(), approval_id),
                )
                changed = cur.rowcount == 1
            if changed:
                count += 1
                await self._tell_requester(await self.get(approval_id))
        return count

    async def _tell_requester(self, approval: Approval) -> None:
        port = self.admin_port(approval.requester.platform)
        if port is None:
            return
        try:
            await port.on_approval_decided(approval)
        except Exception:
            log.exception("approval %s: could not tell the requester", approval.id)
