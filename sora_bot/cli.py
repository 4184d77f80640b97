"""The `sora-bot` command line (also `python -m sora_bot`). Its outputs are a public contract
(README "Operations"; docs/ARCHITECTURE.md): scripts read these JSON fields and exit codes.

Exit codes: 0 success; 1 a failure (job failed, check found problems); 2 bad input or
configuration (the message says what to fix).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.domain.errors import BotError, ConfigError
from bot.domain.models import Job, Requester, credits_json, fmt_credits, to_mc
from bot.infra.config import Settings, load_settings

log = logging.getLogger("bot")


def _setup_logging(verbose: bool = False) -> None:
    """LOG_LEVEL / LOG_FORMAT (text|json) from the environment or `.env`; the configured secrets
    are masked in every line (see bot/infra/logs.py)."""
    from bot.infra.logs import configure_logging, log_options, secrets_of

    level, fmt, problems = log_options(verbose)
    secrets: list[str] = []
    # Invalid configuration is the command's to report; token shapes are masked regardless.
    with contextlib.suppress(ConfigError):
        secrets = secrets_of(load_settings())
    configure_logging(level=level, fmt=fmt, secrets=secrets)
    for problem in problems:
        log.warning("%s", problem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sora-bot", description="Order AI videos from Discord and Slack, with credit budgets."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "run", help="run Discord and/or Slack (whichever has tokens) and the HTTP server"
    )

    demo = sub.add_parser("demo", help="console chat against the built-in EvoLink simulator")
    demo.add_argument(
        "-c", "--command", dest="command_text", help='one command, e.g. "/sora a cat --duration 10"'
    )
    demo.add_argument("--task-seconds", type=float, default=4.0, help="simulated task length")

    sim = sub.add_parser("simulator", help="run the EvoLink simulator alone on 127.0.0.1")
    sim.add_argument("--port", type=int, default=8090)
    sim.add_argument("--task-seconds", type=float, default=20.0)

    quote = sub.add_parser("quote", help="what a request would cost (nothing is held or sent)")
    quote.add_argument("text")
    quote.add_argument("--json", action="store_true")

    sub.add_parser("check", help="check configuration and reachability")

    admin = sub.add_parser("admin", help="quota management and reports")
    asub = admin.add_subparsers(dest="admin_command", required=True)
    usage = asub.add_parser("usage", help="this period's usage per user")
    usage.add_argument("--json", action="store_true")
    usage.add_argument("--period", type=_period_day, help="a date inside the period (YYYY-MM-DD)")
    jobs = asub.add_parser("jobs", help="recent jobs, newest first")
    jobs.add_argument("--json", action="store_true")
    jobs.add_argument("--limit", type=int, default=20)
    limit = asub.add_parser("set-limit", help="a user's allowance per period")
    limit.add_argument("target", metavar="PLATFORM:WORKSPACE:USER")
    limit.add_argument("amount")
    grant = asub.add_parser("grant", help="extra credits for this period")
    grant.add_argument("target", metavar="PLATFORM:WORKSPACE:USER")
    grant.add_argument("amount")
    grant.add_argument("--reason", default="")
    team = asub.add_parser("set-team-budget", help="a workspace's budget per period (0 = none)")
    team.add_argument("target", metavar="PLATFORM:WORKSPACE")
    team.add_argument("amount")
    role = asub.add_parser("set-role-limit", help="an allowance for a Discord role (highest wins)")
    role.add_argument("target", metavar="PLATFORM:WORKSPACE:ROLE")
    role.add_argument("amount")
    approvals = asub.add_parser("approvals", help="requests waiting for an admin's decision")
    approvals.add_argument("--json", action="store_true")
    for verb in ("approve", "deny"):
        decide = asub.add_parser(
            verb, help=f"{verb} a waiting request (exactly one decision counts)"
        )
        decide.add_argument("approval_id")
    audit = asub.add_parser("audit", help="every admin action, oldest first")
    audit.add_argument("--json", action="store_true")
    export = asub.add_parser("export", help="a period's usage per person (CSV or a table)")
    export.add_argument("--csv", action="store_true", help="CSV with a header row")
    export.add_argument("--period", type=_period_day, help="a date inside the period (YYYY-MM-DD)")
    chart = asub.add_parser("chart", help="a period's spend per person as a chart (PNG, …)")
    chart.add_argument(
        "--out",
        required=True,
        type=_chart_file,
        metavar="FILE.png",
        help="where to write it; the name says the format: .png, .jpg, .svg or .pdf",
    )
    chart.add_argument("--period", type=_period_day, help="a date inside the period (YYYY-MM-DD)")
    return parser


def _chart_file(text: str) -> str:
    from bot.services.chart import ChartFormatError, chart_format

    try:
        chart_format(text)
    except ChartFormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _period_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write it as YYYY-MM-DD (e.g. 2026-10-31)"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        if args.command == "simulator":
            from bot.infra.simulator import run_simulator

            run_simulator(args.port, args.task_seconds)
            return 0
        settings = load_settings()
        if args.command == "quote":
            return _quote(settings, args.text, args.json)
        return asyncio.run(_async_main(settings, args))
    except ConfigError as exc:
        print(f"sora-bot: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"sora-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _async_main(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "demo":
        from sora_bot.demo import run_demo

        return await run_demo(settings, command=args.command_text, task_seconds=args.task_seconds)
    if args.command == "run":
        from sora_bot.runner import run_bot

        return await run_bot(settings)
    if args.command == "check":
        from sora_bot.checks import run_checks

        return await run_checks(settings)
    return await _admin(settings, args)


def _quote(settings: Settings, text: str, as_json: bool) -> int:
    from bot.domain.catalog import Catalog
    from bot.domain.grammar import parse_request

    catalog = Catalog.load(settings.catalog_path)
    try:
        request = parse_request(text, catalog, settings.default_model)
    except BotError as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            print(f"✗ {exc}", file=sys.stderr)
        return 2
    price = catalog.quote(request)
    if as_json:
        print(
            json.dumps(
                {
                    "model": request.model,
                    "prompt": request.prompt,
                    "duration": request.duration,
                    "aspect_ratio": request.aspect_ratio,
                    "credits": credits_json(to_mc(price)),
                }
            )
        )
    else:
        print(
            f"{request.model}, {request.duration}s, {request.aspect_ratio}: "
            f"{fmt_credits(price)} credits"
        )
    return 0


def _target(text: str, parts: int) -> list[str]:
    pieces = text.split(":")
    if len(pieces) != parts or not all(pieces):
        shape = "PLATFORM:WORKSPACE:USER" if parts == 3 else "PLATFORM:WORKSPACE"
        raise ConfigError(f"{text!r} is not {shape} (e.g. slack:T0123:U0456).")
    return pieces


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:{os.getuid()}"


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_core

    core = await build_core(settings, require_key=False)
    service = core.service
    try:
        command = args.admin_command
        if command == "usage":
            day = dt.date.fromisoformat(args.period) if args.period else None
            rows = await service.usage(cli_actor(), day=day)
            data = [
                {
                    "platform": r.platform,
                    "workspace": r.workspace,
                    "user": r.user,
                    "period_start": r.period_start.isoformat(),
                    "limit": _num(r.limit),
                    "granted": _num(r.granted),
                    "used": _num(r.used),
                    "reserved": _num(r.reserved),
                    "available": _num(r.available),
                }
                for r in rows
            ]
            _print_table(
                data,
                args.json,
                (
                    "platform",
                    "workspace",
                    "user",
                    "limit",
                    "granted",
                    "used",
                    "reserved",
                    "available",
                ),
            )
        elif command == "jobs":
            jobs = await core.book.recent_jobs(limit=max(1, args.limit))
            _print_table(
                [_job_json(j) for j in jobs],
                args.json,
                (
                    "id",
                    "status",
                    "user",
                    "model",
                    "duration",
                    "reserved_credits",
                    "charged_credits",
                    "prompt",
                ),
            )
        elif command == "set-limit":
            platform, workspace, user = _target(args.target, 3)
            who = Requester(platform=platform, workspace=workspace, user=user)
            await service.set_limit(cli_actor(), who, args.amount)
            print(f"{who.key}: allowance set to {args.amount} credits per {settings.budget_period}")
        elif command == "grant":
            platform, workspace, user = _target(args.target, 3)
            who = Requester(platform=platform, workspace=workspace, user=user)
            await service.grant(cli_actor(), who, args.amount, args.reason)
            print(f"{who.key}: granted {args.amount} credits for this {settings.budget_period}")
        elif command == "set-team-budget":
            platform, workspace = _target(args.target, 2)
            await service.set_team_budget(cli_actor(), platform, workspace, args.amount)
            print(
                f"{platform}:{workspace}: team budget set to {args.amount} credits "
                f"per {settings.budget_period}"
            )
        elif command == "set-role-limit":
            platform, workspace, role_id = _target(args.target, 3)
            await service.set_role_limit(cli_actor(), platform, workspace, role_id, args.amount)
            print(f"{platform}:{workspace} role {role_id}: allowance set to {args.amount} credits")
        elif command == "approvals":
            waiting = await service.pending_approvals(cli_actor())
            listing: list[dict[str, Any]] = [
                {
                    "id": a.id,
                    "requester": a.requester.key,
                    "model": a.request.model,
                    "duration": a.request.duration,
                    "prompt": a.request.prompt,
                    "price": _num(a.price),
                    "expires_at": a.expires_at.isoformat(),
                }
                for a in waiting
            ]
            _print_table(listing, args.json, ("id", "requester", "price", "expires_at", "prompt"))
        elif command in ("approve", "deny"):
            decided = await service.decide_approval(
                args.approval_id, cli_actor(), command == "approve"
            )
            started = f"; job {decided.job_id} started" if decided.job_id else ""
            print(f"{decided.id}: {decided.status}{started}")
        elif command == "audit":
            entries = await service.audit_log()
            audit: list[dict[str, Any]] = [
                {
                    "at": r["at"],
                    "actor": r["actor"],
                    "action": r["action"],
                    "target": r["target"],
                    "amount": _amount(r["amount_mc"]),
                    "reason": r["reason"] or "",
                }
                for r in entries
            ]
            _print_table(audit, args.json, ("at", "actor", "action", "target", "amount", "reason"))
        elif command == "export":
            from bot.services.reports import build_report, report_csv, report_text

            report = await build_report(service, actor=cli_actor(), day=args.period)
            sys.stdout.write(report_csv(report) if args.csv else report_text(report))
        elif command == "chart":
            from bot.services.chart import chart_format, describe_chart, render_chart
            from bot.services.reports import build_report

            report = await build_report(service, actor=cli_actor(), day=args.period)
            png = await asyncio.to_thread(
                functools.partial(render_chart, report, file_format=chart_format(args.out))
            )
            try:
                await asyncio.to_thread(Path(args.out).write_bytes, png)
            except OSError as exc:
                raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None
            print(describe_chart(report))
            print(f"chart written to {args.out} ({len(png)} bytes)")
        return 0
    finally:
        await core.stop()


def _amount(value: object) -> float | int | None:
    return None if value is None else credits_json(int(str(value)))


def _num(value: Any) -> float | int:
    return credits_json(to_mc(value))


def _job_json(job: Job) -> dict[str, Any]:
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
        "reserved_credits": credits_json(job.reserved_mc),
        "charged_credits": None if job.charged_mc is None else credits_json(job.charged_mc),
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": None if job.finished_at is None else job.finished_at.isoformat(),
    }


def _print_table(rows: list[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        print("(nothing yet)")
        return
    table = [[str(row.get(c, ""))[:60] for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
