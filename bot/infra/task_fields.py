"""Reading an EvoLink task object's money and result fields (used by bot/infra/evolink.py).

EvoLink reports a task's charge in one of three forms, read in this order:
    usage.credits_used                      the charge
    usage.cost.credits                      the charge
    billing {charge_status, charged_credits, reserved_credits, refunded_credits, refund_scope}
        charged   → charged (else reserved) credits − refunded credits
        released  → charged credits − refunded credits (normally 0: all given back)
        reserved  → not settled yet: no charge known
A `billing` object whose `refund_scope` is set to anything but "account_balance" does not
speak of the account's credits and is ignored. Results come as `results[]` (links) or
`result_data` (an object or a list of objects with `video_url`/`url`).

Invariants: credits are `Decimal`, never float; a field of the wrong type reads as absent.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

CHARGE_STATUSES = frozenset({"reserved", "charged", "released"})


def decimal_of(value: Any) -> Decimal | None:
    try:
        return None if value is None or isinstance(value, bool) else Decimal(str(value))
    except InvalidOperation:
        return None


def billing_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The task's `billing` object (top level, or under `usage`) when it is about the account."""
    billing = data.get("billing")
    if not isinstance(billing, dict):
        usage = data.get("usage")
        billing = usage.get("billing") if isinstance(usage, dict) else None
    if not isinstance(billing, dict):
        return None
    return billing if billing.get("refund_scope") in (None, "account_balance") else None


def status_of(billing: dict[str, Any]) -> str:
    status = str(billing.get("charge_status") or "unknown").lower()
    return status if status in CHARGE_STATUSES else "unknown"


def billed(billing: dict[str, Any]) -> Decimal | None:
    """The billing object's charge (see the module docstring); None while not settled."""
    status = status_of(billing)
    refunded = decimal_of(billing.get("refunded_credits")) or Decimal(0)
    if status == "charged":
        charged = decimal_of(billing.get("charged_credits"))
        if charged is None:
            charged = decimal_of(billing.get("reserved_credits"))
        return None if charged is None else max(charged - refunded, Decimal(0))
    if status == "released":
        charged = decimal_of(billing.get("charged_credits")) or Decimal(0)
        return max(charged - refunded, Decimal(0))
    return None


def charge_of(usage: dict[str, Any], billing: dict[str, Any] | None) -> Decimal | None:
    """What EvoLink charged: `usage.credits_used`, else `usage.cost.credits`, else billing."""
    charged = decimal_of(usage.get("credits_used"))
    if charged is None:
        cost = usage.get("cost")
        charged = decimal_of(cost.get("credits")) if isinstance(cost, dict) else None
    if charged is None and billing is not None:
        charged = billed(billing)
    return charged


def urls_of(value: Any) -> list[str]:
    """Result links from `results` (strings or objects) or `result_data` (object or list)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    urls = [
        v if isinstance(v, str) else v.get("video_url") or v.get("url")
        for v in value
        if isinstance(v, (str, dict))
    ]
    return [u for u in urls if isinstance(u, str) and u]
