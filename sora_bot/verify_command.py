"""`sora-bot admin verify [--json]`: the ledger's running totals against its entries.

The recomputation is bot/infra/store/ledger_rows.py and the comparison bot/services/totals.py
(through `Ledger.verify`); this module only parses, runs and prints it.
Output (README "Operations"): a table of differences and a verdict, or with `--json` one
object with `checked` (totals compared), `agrees` and `differences`, each with `scope`
(`user` or `team`), `target` (`PLATFORM:WORKSPACE[:USER]`), `platform`, `workspace`, `user`
(null for a team), `period_start`, `field` (`granted`, `used`, `held`: exact credits; `jobs`:
a count), `total` (the running total) and `recomputed` (from the entries). Exit code 0 when
every total agrees with the entries, 1 when any differs, 2 for bad input or configuration.
"""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.domain.models import from_uc
from bot.infra.config import Settings
from sora_bot.output import print_json, print_table

if TYPE_CHECKING:
    from bot.services.totals import TotalsDifference, Verification

COLUMNS = ("scope", "target", "period_start", "field", "total", "recomputed")


def add_verify_parser(admin: Any) -> None:
    """Register `verify` on the `admin` subparsers."""
    command = admin.add_parser(
        "verify", help="recompute the ledger's running totals from its entries and compare"
    )
    command.add_argument("--json", action="store_true")


async def run_verify(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_core

    core = await build_core(settings, require_key=False)
    try:
        report = await core.ledger.verify()
    finally:
        await core.stop()
    if args.json:
        print_json(verification_json(report))
    else:
        print_verification(report)
    return 0 if report.agrees else 1


def _figure(difference: TotalsDifference, value: int) -> Decimal | int:
    return from_uc(value) if difference.is_amount else value


def difference_json(d: TotalsDifference) -> dict[str, Any]:
    return {
        "scope": d.scope,
        "target": d.target,
        "platform": d.platform,
        "workspace": d.workspace,
        "user": None if d.scope == "team" else d.user,
        "period_start": d.period_start,
        "field": d.field,
        "total": _figure(d, d.total),
        "recomputed": _figure(d, d.recomputed),
    }


def verification_json(report: Verification) -> dict[str, Any]:
    return {
        "checked": report.checked,
        "agrees": report.agrees,
        "differences": [difference_json(d) for d in report.differences],
    }


def print_verification(report: Verification) -> None:
    """The differences as a table (amounts in credits), then the verdict."""
    if report.agrees:
        print(f"✓ All {report.checked} running totals agree with the ledger's entries.")
        return
    print_table([difference_json(d) for d in report.differences], COLUMNS)
    count = len(report.differences)
    figures = "1 figure" if count == 1 else f"{count} figures"
    print(
        f"✗ {figures} in {report.checked} running totals "
        f"{'differs' if count == 1 else 'differ'} from the ledger's entries "
        "(the entries are the truth; amounts in credits)."
    )
