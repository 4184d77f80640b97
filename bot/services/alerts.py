"""Budget alerts and the EvoLink account guard.

- A workspace crossing 50 / 80 / 100 % of its team budget, or a user crossing 80 % of their
  allowance, raises one alert to the admins — once per threshold per period, recorded in the
  `alerts` table (insert-or-ignore decides who sends it, so concurrent requests send it once).
  Spend counts what is captured plus what is held.
- Before a job is accepted, the EvoLink account balance (`GET /v1/credits`, cached briefly) must
  cover its quote; otherwise the request is refused with a clear message and admins are told
  once a day, instead of failing at EvoLink with 402. If the balance cannot be read, the
  request goes ahead (EvoLink's own 402 is still handled).
- When the account's spend runs ahead of the ledger's (bot/services/reconcile.py), each
  platform's admins are told once a day (`account_spend`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from decimal import Decimal

from pydantic import BaseModel

from bot.domain.errors import AccountBalanceError, ProviderError
from bot.domain.models import Requester, fmt_credits
from bot.infra.evolink import EvoLinkClient
from bot.infra.store import Tx
from bot.infra.store.approval_rows import claim_alert
from bot.services.ledger import Figures

log = logging.getLogger(__name__)

TEAM_THRESHOLDS = (50, 80, 100)
USER_THRESHOLDS = (80,)
BALANCE_TTL = 60.0


class Alert(BaseModel):
    platform: str
    workspace: str
    user: str | None  # None: about the whole workspace or the account
    kind: str  # team_budget | user_budget | account_balance
    threshold: int
    text: str


def _percent(spent_uc: int, budget_uc: int) -> Decimal:
    return Decimal(spent_uc * 100) / Decimal(budget_uc) if budget_uc > 0 else Decimal(0)


async def crossed_thresholds(
    tx: Tx,
    who: Requester,
    period_key: str,
    user: Figures,
    team: Figures | None,
) -> list[Alert]:
    """Alerts newly due after the user's spend changed (each claimed once per period)."""
    alerts: list[Alert] = []
    if team is not None:
        spent = team.used_uc + team.held_uc
        share = _percent(spent, team.limit_uc)
        for threshold in TEAM_THRESHOLDS:
            if share >= threshold and await claim_alert(
                tx, who, "", period_key, "team_budget", threshold
            ):
                alerts.append(
                    Alert(
                        platform=who.platform,
                        workspace=who.workspace,
                        user=None,
                        kind="team_budget",
                        threshold=threshold,
                        text=(
                            f"The team has used {share:.0f}% of its budget this period: "
                            f"{fmt_credits(spent)} of {fmt_credits(team.limit_uc)} credits "
                            "(captured + held)."
                        ),
                    )
                )
    allowance = user.limit_uc + user.granted_uc
    spent = user.used_uc + user.held_uc
    share = _percent(spent, allowance)
    for threshold in USER_THRESHOLDS:
        if share >= threshold and await claim_alert(
            tx, who, who.user, period_key, "user_budget", threshold
        ):
            name = who.display_name or who.user
            alerts.append(
                Alert(
                    platform=who.platform,
                    workspace=who.workspace,
                    user=who.user,
                    kind="user_budget",
                    threshold=threshold,
                    text=(
                        f"{name} has used {share:.0f}% of their allowance this period: "
                        f"{fmt_credits(spent)} of {fmt_credits(allowance)} credits."
                    ),
                )
            )
    return alerts


class AccountGuard:
    """Refuses requests the EvoLink account cannot pay for, reading the balance at most every
    BALANCE_TTL seconds (and counting what it admitted since)."""

    def __init__(self, evolink: EvoLinkClient, ttl: float = BALANCE_TTL) -> None:
        self.evolink = evolink
        self.ttl = ttl
        self._remaining: Decimal | None = None
        self._unlimited = False
        self._read_at = float("-inf")

    async def check(self, quote: Decimal) -> None:
        if time.monotonic() - self._read_at > self.ttl:
            try:
                account = await self.evolink.credits()
            except ProviderError as exc:
                log.warning("could not read the EvoLink balance (%s); not blocking", exc.code)
                return
            self._remaining = account.remaining
            self._unlimited = account.unlimited
            self._read_at = time.monotonic()
        if self._unlimited or self._remaining is None:
            return
        if self._remaining < quote:
            raise AccountBalanceError(
                f"The team's EvoLink account has {fmt_credits(max(self._remaining, Decimal(0)))} "
                f"credits left and this video needs {fmt_credits(quote)}. The admins have been "
                "told; please try again once the account is topped up.",
                code="insufficient_balance",
            )

    def spent(self, quote: Decimal) -> None:
        """A request was admitted: count it until the next balance read."""
        if self._remaining is not None:
            self._remaining -= quote

    def forget(self) -> None:
        self._read_at = float("-inf")


def account_alert(who: Requester, message: str) -> Alert:
    return Alert(
        platform=who.platform,
        workspace=who.workspace,
        user=None,
        kind="account_balance",
        threshold=0,
        text=f"EvoLink account balance is too low: {message}",
    )


#: The `workspace` of an alert about the whole EvoLink account (not one workspace's budget).
ACCOUNT_SCOPE = "account"


def account_spend_alert(platform: str, text: str) -> Alert:
    """The account's spend runs ahead of the ledger's (bot/services/reconcile.py)."""
    return Alert(
        platform=platform,
        workspace=ACCOUNT_SCOPE,
        user=None,
        kind="account_spend",
        threshold=0,
        text=text,
    )


def today_key() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()
