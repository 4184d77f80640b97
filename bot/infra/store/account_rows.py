"""SQL on `account_samples`: readings of the EvoLink account's credits (`GET /v1/credits`),
recorded by the composition root's sampler and read by `sora-bot admin reconcile`.

Invariants: samples are append-only and amounts are integer uc, 1/10,000 credit (None: EvoLink did
not report the figure); `at` is an ISO UTC timestamp, so text order is time order.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.infra.store.engine import Tx, now_iso, rows


@dataclass(frozen=True)
class AccountSample:
    at: str
    used_uc: int | None
    remaining_uc: int | None
    unlimited: bool
    reason: str  # start | tick | stop | reconcile


async def record(
    tx: Tx, used_uc: int | None, remaining_uc: int | None, unlimited: bool, reason: str
) -> str:
    stamp = now_iso()
    await tx.execute(
        "INSERT INTO account_samples (at, used_uc, remaining_uc, unlimited, reason)"
        " VALUES (?, ?, ?, ?, ?)",
        (stamp, used_uc, remaining_uc, int(unlimited), reason),
    )
    return stamp


async def between(tx: Tx, since: str, until: str) -> list[AccountSample]:
    """Samples with `since` <= at <= `until` that report `used_uc`, oldest first."""
    found = await rows(
        tx,
        "SELECT at, used_uc, remaining_uc, unlimited, reason FROM account_samples"
        " WHERE at >= ? AND at <= ? AND used_uc IS NOT NULL ORDER BY at, id",
        (since, until),
    )
    return [AccountSample(r[0], r[1], r[2], bool(r[3]), r[4]) for r in found]
