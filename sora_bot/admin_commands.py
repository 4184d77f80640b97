"""`sora-bot admin …`: quotas, approvals, reports and the audit, without a chat client.

Invariants:
- An admin command opens an existing database and never creates one (`admin init` is the one
  that does): run from the wrong directory, it says which file it looked for instead of
  silently reporting an empty, new ledger.
- Targets are checked by `bot.domain.targets` (known platform, the argument's shape, roles on
  Discord only) before anything is written; a target that never used the bot is warned about.
- People read one vocabulary in tables: limit, granted, allowance (= limit + granted), used,
  held, left. JSON keeps the outside contract's field names (`reserved`, `available`, …) and
  adds `held` and `allowance`; amounts are exact (sora_bot/output.py).
- The actor of every change is `cli:<os user>`; each change writes its audit row (with the
  `--reason` given) in the same transaction as its effect (bot/services/ledger.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.domain.errors import ConfigError
from bot.domain.models import Job, Requester, fmt_credits
from bot.domain.targets import Target, TargetKind, parse_target
from bot.infra.config import DEMO_DATABASE_URL, Settings
from sora_bot.output import amount, print_json, print_table

if TYPE_CHECKING:
    from bot.services.service import SoraService

USAGE_COLUMNS = (
    *("platform", "workspace", "user"),
    *("limit", "granted", "allowance", "used", "held", "left"),
)
WORKSPACE_HELP = "one workspace only, in its own budget period and time zone (default: all)"
JOB_COLUMNS = ("id", "status", "user", "model", "duration", "held", "charged", "prompt")


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:{os.getuid()}"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def period_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD (e.g. 2026-10-31)"
        ) from None


def add_admin_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser(
        "admin",
        help="quota management and reports",
        description="Quota management and reports on the bot's database (DATABASE_URL). "
        "These commands never create a database: `admin init` does.",
    )
    asub = admin.add_subparsers(dest="admin_command", required=True)
    asub.add_parser("init", help="create the database at DATABASE_URL (if it does not exist)")
    usage = asub.add_parser("usage", help="this period's figures per user")
    usage.add_argument("--json", action="store_true")
    usage.add_argument("--period", type=period_day, help="a date inside the period (YYYY-MM-DD)")
    jobs = asub.add_parser("jobs", help="recent jobs, newest first")
    jobs.add_argument("--json", action="store_true")
    jobs.add_argument("--limit", type=positive_int, default=20, help="how many (1 or more)")
    changes: tuple[tuple[str, str, str], ...] = (
        ("set-limit", "PLATFORM:WORKSPACE:USER", "a user's limit per period"),
        ("grant", "PLATFORM:WORKSPACE:USER", "extra credits for this period"),
        ("set-team-budget", "PLATFORM:WORKSPACE", "a workspace's budget per period (0 = none)"),
        ("set-role-limit", "discord:GUILD:ROLE", "a limit for a Discord role (highest wins)"),
    )
    for name, shape, text in changes:
        change = asub.add_parser(name, help=text)
        change.add_argument("target", metavar=shape)
        change.add_argument("amount", help="credits, e.g. 300 or 12.5")
        change.add_argument("--reason", default="", help="why (kept in the audit)")
    approvals = asub.add_parser("approvals", help="requests waiting for an admin's decision")
    approvals.add_argument("--json", action="store_true")
    for verb in ("approve", "deny"):
        decide = asub.add_parser(
            verb, help=f"{verb} a waiting request (exactly one decision counts)"
        )
        decide.add_argument("approval_id")
        decide.add_argument("--reason", default="", help="why (kept in the audit)")
    audit = asub.add_parser("audit", help="every admin action, oldest first")
    audit.add_argument("--json", action="store_true")
    export = asub.add_parser("export", help="a period's usage per person (CSV or a table)")
    export.add_argument("--csv", action="store_true", help="CSV with a header row")
    export.add_argument("--period", type=period_day, help="a date inside the period (YYYY-MM-DD)")
    export.add_argument("--workspace", metavar="PLATFORM:WORKSPACE", help=WORKSPACE_HELP)
    chart = asub.add_parser("chart", help="a period's spend per person as a chart (PNG, …)")
    chart.add_argument(
        "--out",
        required=True,
        type=_chart_file,
        metavar="FILE.png",
        help="where to write it; the name says the format: .png, .jpg, .svg or .pdf",
    )
    chart.add_argument("--period", type=period_day, help="a date inside the period (YYYY-MM-DD)")
    chart.add_argument("--workspace", metavar="PLATFORM:WORKSPACE", help=WORKSPACE_HELP)
    from sora_bot.reconcile_command import add_reconcile_parser
    from sora_bot.verify_command import add_verify_parser

    add_reconcile_parser(asub, period_day)
    add_verify_parser(asub)
    from sora_bot.settings_command import add_settings_parser

    add_settings_parser(asub)


def _chart_file(text: str) -> str:
    from bot.services.chart import ChartFormatError, chart_format

    try:
        chart_format(text)
    except ChartFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def require_database(settings: Settings) -> None:
    """ConfigError naming the file, DATABASE_URL and the working directory when the database
    does not exist (module docstring)."""
    if settings.database_exists():
        return
    lines = [
        f"no database at {settings.database_where} (DATABASE_URL={settings.database_url}, "
        f"relative to the working directory {Path.cwd()}).",
        "Run admin commands where the bot runs, or set DATABASE_URL to its database; "
        "`sora-bot admin init` creates a new one.",
    ]
    if not settings.database_explicit:
        demo = settings.model_copy(update={"database_url": DEMO_DATABASE_URL})
        if demo.database_exists():
            lines.append(
                f"The demo's jobs are in {demo.database_where}: "
                f"DATABASE_URL={DEMO_DATABASE_URL} sora-bot admin …"
            )
    raise ConfigError("\n  ".join(lines))


async def run_admin(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_core

    command = args.admin_command
    if command == "init":
        existed = settings.database_exists()
        core = await build_core(settings, require_key=False)
        await core.stop()
        print(f"database {'already exists' if existed else 'created'}: {settings.database_where}")
        return 0
    require_database(settings)
    if command == "reconcile":
        from sora_bot.reconcile_command import run_reconcile

        return await run_reconcile(settings, args)
    if command == "verify":
        from sora_bot.verify_command import run_verify

        return await run_verify(settings, args)
    core = await build_core(settings, require_key=False)
    service = core.service
    later: list[str] = []  # warnings to print once the command succeeded
    try:
        if command == "usage":
            rows = await service.usage(cli_actor(), day=args.period)
            data = [
                {
                    "platform": r.platform,
                    "workspace": r.workspace,
                    "user": r.user,
                    "period_start": r.period_start.isoformat(),
                    "limit": r.limit,
                    "granted": r.granted,
                    "allowance": r.limit + r.granted,
                    "used": r.used,
                    "reserved": r.reserved,
                    "held": r.reserved,
                    "available": r.available,
                }
                for r in rows
            ]
            if args.json:
                print_json(data)
            else:
                print_table([d | {"left": d["available"]} for d in data], USAGE_COLUMNS)
        elif command == "jobs":
            jobs = [job_json(j) for j in await core.book.recent_jobs(limit=args.limit)]
            if args.json:
                print_json(jobs)
            else:
                table = [
                    j | {"held": j["held_credits"], "charged": j["charged_credits"]} for j in jobs
                ]
                print_table(table, JOB_COLUMNS)
        elif command == "set-limit":
            who = await _person(service, args.target, later)
            value = await service.set_limit(cli_actor(), who, args.amount, args.reason)
            period = await _period_word(service, who.platform, who.workspace)
            print(f"{who.key}: limit set to {fmt_credits(value)} credits per {period}")
        elif command == "grant":
            who = await _person(service, args.target, later)
            value = await service.grant(cli_actor(), who, args.amount, args.reason)
            period = await _period_word(service, who.platform, who.workspace)
            print(f"{who.key}: granted {fmt_credits(value)} credits for this {period}")
        elif command == "set-team-budget":
            ws = await _checked(service, args.target, "workspace", later)
            value = await service.set_team_budget(
                cli_actor(), ws.platform, ws.workspace, args.amount, args.reason
            )
            period = await _period_word(service, ws.platform, ws.workspace)
            print(f"{ws.key}: team budget set to {fmt_credits(value)} credits per {period}")
        elif command == "set-role-limit":
            role = await _checked(service, args.target, "role", later)
            assert role.name is not None
            period = await _period_word(service, role.platform, role.workspace)
            value = await service.set_role_limit(
                cli_actor(), role.platform, role.workspace, role.name, args.amount, args.reason
            )
            print(
                f"{role.platform}:{role.workspace} role {role.name}: limit set to "
                f"{fmt_credits(value)} credits per {period}"
            )
        elif command == "approvals":
            waiting = await service.pending_approvals(cli_actor())
            listing: list[dict[str, Any]] = [
                {
                    "id": a.id,
                    "requester": a.requester.key,
                    "model": a.request.model,
                    "duration": a.request.duration,
                    "prompt": a.request.prompt,
                    "price": a.price,
                    "expires_at": a.expires_at.isoformat(),
                }
                for a in waiting
            ]
            if args.json:
                print_json(listing)
            else:
                print_table(listing, ("id", "requester", "price", "expires_at", "prompt"))
        elif command in ("approve", "deny"):
            decided = await service.decide_approval(
                args.approval_id, cli_actor(), command == "approve", args.reason
            )
            from bot.services.approvals import decision_summary
            from bot.services.oversight import PICKUP_EVERY

            print(decision_summary(decided, PICKUP_EVERY))
        elif command == "settings":
            from sora_bot.settings_command import run_settings

            return await run_settings(service, cli_actor(), args)
        elif command == "audit":
            entries = [
                {
                    "at": r["at"],
                    "actor": r["actor"],
                    "action": r["action"],
                    "target": r["target"],
                    "amount": amount(None if r["amount_uc"] is None else int(str(r["amount_uc"]))),
                    "reason": r["reason"] or "",
                }
                for r in await service.audit_log()
            ]
            if args.json:
                print_json(entries)
            else:
                print_table(entries, ("at", "actor", "action", "target", "amount", "reason"))
        elif command == "export":
            from bot.services.reports import build_report, report_csv, report_text

            platform, workspace = _scope(args.workspace)
            report = await build_report(
                service, actor=cli_actor(), platform=platform, workspace=workspace, day=args.period
            )
            later.extend(await _own_periods(service, args.workspace))
            sys.stdout.write(report_csv(report) if args.csv else report_text(report))
        elif command == "chart":
            from bot.services.chart import chart_format, describe_chart, render_chart
            from bot.services.reports import build_report

            platform, workspace = _scope(args.workspace)
            report = await build_report(
                service, actor=cli_actor(), platform=platform, workspace=workspace, day=args.period
            )
            later.extend(await _own_periods(service, args.workspace))
            png = await asyncio.to_thread(
                functools.partial(render_chart, report, file_format=chart_format(args.out))
            )
            try:
                await asyncio.to_thread(Path(args.out).write_bytes, png)
            except OSError as exc:
                raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None
            print(describe_chart(report))
            print(f"chart written to {args.out} ({len(png)} bytes)")
        for warning in later:
            print(warning, file=sys.stderr)
        return 0
    finally:
        await core.stop()


async def _checked(service: SoraService, text: str, kind: TargetKind, later: list[str]) -> Target:
    """The target, refused when malformed. When nobody there (or not that person) ever used
    the bot — most often a mistyped id — a warning joins `later`, printed once the change
    is made (a refused change shows its refusal only)."""
    target = parse_target(text, kind)
    user = target.name if kind == "user" else None
    if not await service.has_history(target.platform, target.workspace, user):
        whom = "this user" if kind == "user" else "anyone in this workspace"
        later.append(
            f"warning: {target.key}: {whom} never used the bot (no job, request or credits "
            "yet); check the id for a typo (README: Finding ids)."
        )
    return target


def _scope(text: str | None) -> tuple[str | None, str | None]:
    """`--workspace PLATFORM:WORKSPACE` as (platform, workspace); (None, None): every one."""
    if text is None:
        return None, None
    target = parse_target(text, "workspace")
    return target.platform, target.workspace


async def _own_periods(service: SoraService, scope: str | None) -> list[str]:
    """Warnings for a report of every workspace: those on their own period or time zone are
    summed in BUDGET_PERIOD's here (their entries count in their own periods)."""
    if scope is not None:
        return []
    return [
        f"warning: {found.platform}:{found.workspace} counts its budget per {found.budget_period} "
        f"in {found.budget_timezone}; for its own period: --workspace "
        f"{found.platform}:{found.workspace}"
        for found in await service.workspaces.own_periods()
    ]


async def _period_word(service: SoraService, platform: str, workspace: str) -> str:
    """The workspace's budget period (its setting, else BUDGET_PERIOD): "month", "week"…"""
    return (await service.workspace_settings(cli_actor(), platform, workspace)).budget_period


async def _person(service: SoraService, text: str, later: list[str]) -> Requester:
    target = await _checked(service, text, "user", later)
    assert target.name is not None
    return Requester(platform=target.platform, workspace=target.workspace, user=target.name)


def job_json(job: Job) -> dict[str, Any]:
    """A job for `admin jobs --json`: the contract's fields plus `held_credits` (what the job
    holds now: its hold until it ends, then 0)."""
    return {
        "id": job.id,
        "platform": job.requester.platform,
        "workspace": job.requester.workspace,
        "user": job.requester.user,
        "status": job.status.value,
        "model": job.request.model,
        "duration": job.request.duration,
        "aspect_ratio": job.request.aspect_ratio,
        "prompt": job.request.prompt,
        "task_id": job.task_id,
        "reserved_credits": amount(job.reserved_uc),
        "held_credits": amount(0 if job.status.terminal else job.reserved_uc),
        "charged_credits": amount(job.charged_uc),
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": None if job.finished_at is None else job.finished_at.isoformat(),
    }
