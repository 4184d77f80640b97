"""`sora-bot admin reconcile [--period YYYY-MM-DD] [--json]`: the ledger against EvoLink.

The comparison is bot/services/reconcile.py; this module only parses, runs and prints it.
Output (README "Operations"): a readable summary, or with `--json` one object with
`period_start`, `since`, `until`, `samples`, `account_used`, `ledger_captured`, `difference`
(EvoLink − ledger; null when the period has fewer than two account samples), `open_jobs`,
`open_held`, `tasks_checked`, `tasks_unreadable`, `tasks_skipped`, `tasks` (the ones that
differ: `job_id`, `task_id`, `status`, `ledger`, `evolink`, `difference`, `cause`), `causes`
and `matches`. Exit code 0 when the ledger matches EvoLink, 1 when it does not (or cannot be
compared), 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from bot.domain.models import credits_json, fmt_credits, to_uc
from bot.infra.config import Settings

if TYPE_CHECKING:
    from bot.services.reconcile import Reconciliation


def add_reconcile_parser(admin: Any, period_day: Any) -> None:
    """Register `reconcile` on the `admin` subparsers (`period_day` parses --period)."""
    command = admin.add_parser(
        "reconcile", help="compare the ledger with what EvoLink billed (account and tasks)"
    )
    command.add_argument("--period", type=period_day, help="a date inside the period (YYYY-MM-DD)")
    command.add_argument("--json", action="store_true")


async def run_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_core

    core = await build_core(settings)
    try:
        assert core.reconciler is not None
        period = core.ledger.period_of(args.period)
        if period.start == core.ledger.current_period().start:
            await core.reconciler.sample("reconcile")  # the current period ends now
        report = await core.reconciler.reconcile(period)
    finally:
        await core.stop()
    matches = _matches(report)
    if args.json:
        print(json.dumps(report_json(report, matches), ensure_ascii=False, indent=2))
    else:
        print(report_text(report, matches))
    return 0 if matches else 1


def _matches(report: Reconciliation) -> bool:
    difference = report.difference
    return difference is not None and to_uc(difference) == 0 and not report.tasks


def _num(value: Any) -> float | int | None:
    return None if value is None else credits_json(to_uc(value))


def report_json(report: Reconciliation, matches: bool) -> dict[str, Any]:
    return {
        "period_start": report.period_start.isoformat(),
        "since": report.since,
        "until": report.until,
        "samples": report.samples,
        "account_used": _num(report.account_used),
        "ledger_captured": _num(report.ledger_captured),
        "difference": _num(report.difference),
        "open_jobs": report.open_jobs,
        "open_held": _num(report.open_held),
        "tasks_checked": report.tasks_checked,
        "tasks_unreadable": report.tasks_unreadable,
        "tasks_skipped": report.tasks_skipped,
        "tasks": [
            {
                "job_id": t.job_id,
                "task_id": t.task_id,
                "status": t.job_status,
                "ledger": _num(t.ledger),
                "evolink": _num(t.evolink),
                "difference": _num(t.difference),
                "cause": t.cause,
            }
            for t in report.tasks
        ],
        "causes": report.causes,
        "matches": matches,
    }


def report_text(report: Reconciliation, matches: bool) -> str:
    lines = [f"Reconciliation for the period starting {report.period_start.isoformat()}"]
    if report.account_used is None:
        lines.append(f"  EvoLink account: {report.samples} sample(s) in the period, too few")
    else:
        lines.append(
            f"  EvoLink account: used_credits moved by {fmt_credits(report.account_used)} "
            f"credits from {report.since} to {report.until} ({report.samples} samples)"
        )
        lines.append(
            f"  Ledger:          {fmt_credits(report.ledger_captured)} credits captured "
            "over the same time"
        )
        difference = report.difference or 0
        lines.append(f"  Difference:      {fmt_credits(difference)} credits (EvoLink − ledger)")
    lines.append(
        f"  Tasks:           {report.tasks_checked} checked with EvoLink, {len(report.tasks)} "
        f"differ, {report.tasks_unreadable} unreadable"
        + (f", more than {report.tasks_checked} in the period" if report.tasks_skipped else "")
    )
    if matches:
        lines.append("✓ The ledger matches what EvoLink billed.")
        return "\n".join(lines)
    lines.append("✗ Not reconciled — likely causes:")
    lines.extend(f"  - {cause}" for cause in report.causes)
    for t in report.tasks:
        lines.append(
            f"    job {t.job_id} (task {t.task_id}, {t.job_status}): ledger "
            f"{fmt_credits(t.ledger)}, EvoLink {fmt_credits(t.evolink)} — {t.cause}"
        )
    return "\n".join(lines)
