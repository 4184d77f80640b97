"""The operator's command line as a new user meets it: `python -m sora_bot` in a separate
process, a temporary DATABASE_URL, no network (issue 11: items 2, 3, 5, 7, 10, 14, 15, 16)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.infra.config import Settings
from sora_bot.cli import build_parser
from sora_bot.output import dumps

ROOT = Path(__file__).resolve().parents[2]
OWN_VARS = ("EVOLINK_", "DISCORD_", "SLACK_", "PUBLIC_BASE", "DATABASE_", "MEDIA_", "LOG_")
OWN_VARS += ("HOST", "PORT")


def sora(
    cwd: Path, *args: str, db: Path | None = None, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m sora_bot ARGS` in `cwd`, with DATABASE_URL = `db` (None: left unset)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARS)}
    environment.update(MEDIA_DIR=str(cwd / "media"), PYTHONPATH=str(ROOT))
    if db is not None:
        environment["DATABASE_URL"] = f"sqlite:///{db}"
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "sora_bot", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def exact(text: str) -> Any:
    """JSON with every number parsed as an exact Decimal (as a careful script would)."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def ask_for_approval(db: Path, media: Path) -> tuple[str, Decimal]:
    """A request waiting for an admin in `db`: (its id, its price from the service)."""
    from bot.app import build_core
    from bot.domain.models import Requester, Surface
    from tests.support import make_settings

    async def ask() -> tuple[str, Decimal]:
        settings = make_settings(db.parent, "http://127.0.0.1:9", media_dir=media)
        settings = settings.model_copy(update={"database_url": f"sqlite:///{db}"})
        core = await build_core(settings)
        try:
            who = Requester(platform="slack", workspace="T1", user="U1")
            request = core.service.parse("a whale")
            approval = await core.service.ask_admin(who, request, Surface())
            return approval.id, core.service.quote(request)
        finally:
            await core.stop()

    return asyncio.run(ask())


# -- item 2 + 14 + 15: usage by period, one vocabulary, exact amounts --------------------------


def test_usage_by_period_names_every_figure_and_prints_exact_amounts(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    assert sora(tmp_path, "admin", "init", db=db).returncode == 0
    approval_id, price = ask_for_approval(db, tmp_path / "media")
    assert sora(tmp_path, "admin", "approve", approval_id, db=db).returncode == 0
    assert sora(tmp_path, "admin", "set-limit", "slack:T1:U1", "12.345", db=db).returncode == 0
    assert sora(tmp_path, "admin", "grant", "slack:T1:U1", "0.001", db=db).returncode == 0

    today = exact(sora(tmp_path, "admin", "jobs", "--json", db=db).stdout)[0]["created_at"][:10]
    for period in ([], ["--period", today]):
        done = sora(tmp_path, "admin", "usage", "--json", *period, db=db)
        assert done.returncode == 0, done.stderr
        [row] = exact(done.stdout)
        assert {"limit", "granted", "used", "reserved", "available", "held", "allowance"} <= set(
            row
        )
        assert row["limit"] == Decimal("12.345") and '"limit": 12.345' in done.stdout
        # approving granted exactly the price (and held it for the job); then 0.001 more
        assert row["granted"] == price + Decimal("0.001")
        assert f'"granted": {price + Decimal("0.001")}' in done.stdout
        assert row["allowance"] == Decimal("12.345") + row["granted"]
        assert row["held"] == row["reserved"] == price
        assert row["available"] == row["allowance"] - row["used"] - row["held"]
        assert "e-" not in done.stdout.lower() and "e+" not in done.stdout.lower()

    table = sora(tmp_path, "admin", "usage", "--period", today, db=db)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[-6:] == ["limit", "granted", "allowance", "used", "held", "left"]
    assert "reserved" not in table.stdout and "available" not in table.stdout
    past = sora(tmp_path, "admin", "usage", "--period", "2020-01-15", "--json", db=db)
    assert past.returncode == 0 and json.loads(past.stdout) == []

    jobs = sora(tmp_path, "admin", "jobs", db=db)
    assert jobs.stdout.splitlines()[0].split()[5:7] == ["held", "charged"]
    [job] = exact(sora(tmp_path, "admin", "jobs", "--json", db=db).stdout)
    assert job["held_credits"] == job["reserved_credits"] == price  # pending: still held

    export = sora(tmp_path, "admin", "export", "--csv", "--period", today, db=db)
    [line] = list(csv.DictReader(io.StringIO(export.stdout)))
    assert Decimal(line["held"]) == Decimal(line["reserved"]) == price
    assert line["limit"] == "12.345" and Decimal(line["granted"]) == row["granted"]
    assert Decimal(line["allowance"]) == row["allowance"]
    assert Decimal(line["left"]) == row["available"]


def test_verify_reports_a_corrupted_total_with_exact_figures(tmp_path: Path) -> None:
    """`admin verify` (issue 12): the running totals recomputed from the entries; exit 0 when
    they agree, 1 with every differing figure when one does not."""
    db = tmp_path / "bot.db"
    assert sora(tmp_path, "admin", "init", db=db).returncode == 0
    empty = sora(tmp_path, "admin", "verify", "--json", db=db)
    assert empty.returncode == 0, empty.stderr
    assert exact(empty.stdout) == {"checked": 0, "agrees": True, "differences": []}
    approval_id, price = ask_for_approval(db, tmp_path / "media")
    assert sora(tmp_path, "admin", "approve", approval_id, db=db).returncode == 0  # grant + hold
    clean = sora(tmp_path, "admin", "verify", db=db)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout == "✓ All 2 running totals agree with the ledger's entries.\n"
    period = exact(sora(tmp_path, "admin", "usage", "--json", db=db).stdout)[0]["period_start"]

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE ledger_totals SET held_uc = held_uc + 1 WHERE user_id = 'U1'")
    broken = sora(tmp_path, "admin", "verify", "--json", db=db)
    assert broken.returncode == 1, broken.stderr
    assert exact(broken.stdout) == {
        "checked": 2,
        "agrees": False,
        "differences": [
            {
                "scope": "user",
                "target": "slack:T1:U1",
                "platform": "slack",
                "workspace": "T1",
                "user": "U1",
                "period_start": period,
                "field": "held",
                "total": price + Decimal("0.0001"),
                "recomputed": price,
            }
        ],
    }
    text = sora(tmp_path, "admin", "verify", db=db)
    assert text.returncode == 1, text.stderr
    header, row, verdict = text.stdout.splitlines()
    assert header.split() == ["scope", "target", "period_start", "field", "total", "recomputed"]
    assert row.split() == [
        "user",
        "slack:T1:U1",
        period,
        "held",
        f"{price + Decimal('0.0001')}",
        f"{price}",
    ]
    assert verdict.startswith("✗ 1 figure in 2 running totals differs from the ledger's entries")


def test_exact_json_round_trips_every_milli_credit() -> None:
    values = [Decimal("0.001"), Decimal("2.5"), Decimal("300"), Decimal("9999999.999")]
    text = dumps({"amounts": values, "none": None, "name": 'a "cat"'})
    assert exact(text) == {"amounts": values, "none": None, "name": 'a "cat"'}
    assert "9999999.999" in text and "300" in text
    with pytest.raises(TypeError):
        dumps({"credits": 3.75})  # floats never reach the output


# -- item 3: a taken port ---------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Any:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder.getsockname()[1]
    holder.close()


def test_run_on_a_taken_port_exits_at_once_with_one_line(tmp_path: Path, taken_port: int) -> None:
    db = tmp_path / "bot.db"
    done = sora(
        tmp_path,
        "run",
        db=db,
        timeout=30,
        HOST="127.0.0.1",
        PORT=str(taken_port),
        SLACK_BOT_TOKEN="xoxb-test-0000000000",
        SLACK_SIGNING_SECRET="test-signing-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        EVOLINK_API_KEY="sk-test-key-123",
        EVOLINK_BASE_URL="http://127.0.0.1:9",
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"sora-bot: cannot listen on 127.0.0.1:{taken_port}: Address already in use — is "
        "another sora-bot (or another program) using that port? Stop it, or set PORT to a "
        "free port."
    ]
    assert not db.exists(), "nothing started before the port was bound"


def test_simulator_refuses_a_bad_or_taken_port(tmp_path: Path, taken_port: int) -> None:
    bad = sora(tmp_path, "simulator", "--port", "99999", timeout=30)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "a port is 0-65535" in bad.stderr
    busy = sora(tmp_path, "simulator", "--port", str(taken_port), timeout=30)
    assert busy.returncode == 2 and busy.stdout == ""
    assert busy.stderr.strip().splitlines() == [
        f"sora-bot: the simulator cannot listen on 127.0.0.1:{taken_port}: address already in "
        "use — is something else using that port? Choose another with --port (0: any free one)."
    ]


# -- item 5: check fails exactly when run would --------------------------------------------------


@asynccontextmanager
async def fake_discord() -> AsyncIterator[str]:
    """Discord's GET /users/@me, answering any token (all `check` asks of Discord)."""
    app = web.Application()

    async def me(_request: web.Request) -> web.Response:
        return web.json_response({"id": "1", "username": "sora-test"})

    app.router.add_get("/api/v10/users/@me", me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/api/v10"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"SLACK_BOT_TOKEN": "xoxb-test-0000000000"},
        {"DISCORD_TOKEN": "discord-test-token", "DISCORD_API_BASE": "http://127.0.0.1:9"},
        {"EVOLINK_API_KEY": "sk-test-key-123", "EVOLINK_BASE_URL": "http://127.0.0.1:9"},
    ],
    ids=["nothing", "slack-without-secret", "discord-without-key", "key-without-platform"],
)
def test_check_and_run_name_the_same_problems_all_at_once(
    tmp_path: Path, env: dict[str, str]
) -> None:
    problems = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()}).run_problems
    assert problems
    ran = sora(tmp_path, "run", db=tmp_path / "bot.db", timeout=30, **env)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    checked = sora(tmp_path, "check", timeout=30, **env)
    assert checked.returncode == 1
    for problem in problems:
        assert problem in ran.stderr
        assert f"✗ {problem}" in checked.stdout


async def test_check_passes_when_run_would_start(tmp_path: Path) -> None:
    from tests.support import running_simulator

    async with running_simulator() as sim, fake_discord() as discord_api:
        done = await asyncio.to_thread(
            sora,
            tmp_path,
            "check",
            EVOLINK_API_KEY="sk-secret-123",
            EVOLINK_BASE_URL=sim.base_url,
            DISCORD_TOKEN="discord-secret-token",
            DISCORD_API_BASE=discord_api,
        )
    assert done.returncode == 0, done.stdout
    assert "✗" not in done.stdout and done.stdout.strip().endswith("all good")
    assert "Discord: logged in as sora-test" in done.stdout
    assert "sk-secret-123" not in done.stdout + done.stderr


# -- item 7: targets -------------------------------------------------------------------------


def test_admin_refuses_unknown_platforms_and_warns_about_strangers(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    assert sora(tmp_path, "admin", "init", db=db).returncode == 0
    refused = {
        ("set-limit", "slak:T1:U1"): "'slak' is not a platform the bot serves",
        ("set-role-limit", "console:local:r1"): "console has no roles",
        ("set-role-limit", "slack:T1:R1"): "slack has no roles",
        ("set-team-budget", "console"): "e.g. slack:T0123ABCD or discord:123456789012345678)",
        ("grant", "slack:T1"): "is not PLATFORM:WORKSPACE:USER (e.g. slack:T0123ABCD:U0456EFGH",
    }
    for (command, target), expected in refused.items():
        done = sora(tmp_path, "admin", command, target, "100", db=db)
        assert done.returncode == 2 and expected in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr
    assert json.loads(sora(tmp_path, "admin", "audit", "--json", db=db).stdout) == []

    typo = sora(tmp_path, "admin", "set-limit", "console:local:nobody", "1OO", db=db)
    assert typo.returncode == 2 and "'1OO' is not a number of credits" in typo.stderr
    assert "warning" not in typo.stderr, "a refused change shows its refusal only"
    stranger = sora(tmp_path, "admin", "set-limit", "console:local:nobody", "100", db=db)
    assert stranger.returncode == 0
    assert "warning: console:local:nobody: this user never used the bot" in stranger.stderr
    team = sora(tmp_path, "admin", "set-team-budget", "slack:T9", "100", db=db)
    assert team.returncode == 0 and "anyone in this workspace never used" in team.stderr

    approval_id, _price = ask_for_approval(db, tmp_path / "media")  # slack:T1:U1 asked
    known = sora(tmp_path, "admin", "set-limit", "Slack:T1:U1", "100", db=db)
    assert known.returncode == 0 and "warning" not in known.stderr
    assert known.stdout.startswith("slack:T1:U1: limit set to 100 credits")
    role = sora(tmp_path, "admin", "set-role-limit", "discord:123:456", "50", db=db)
    assert role.returncode == 0 and "role 456: limit set to 50" in role.stdout
    actions = [
        a["action"] for a in json.loads(sora(tmp_path, "admin", "audit", "--json", db=db).stdout)
    ]
    assert actions == ["set-limit", "set-team-budget", "set-limit", "set-role-limit"]
    assert approval_id


# -- item 10: whose database ------------------------------------------------------------------


def test_demo_keeps_its_own_database_and_admin_never_creates_one(tmp_path: Path) -> None:
    demo = sora(tmp_path, "demo", "-c", "a paper boat", "--task-seconds", "0.5")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    demo_db = tmp_path / "sora-bot-demo.db"
    assert demo_db.is_file() and not (tmp_path / "sora-bot.db").exists()
    assert f"database {demo_db}" in demo.stderr.splitlines()[0]

    missing = sora(tmp_path, "admin", "jobs")
    assert missing.returncode == 2 and not (tmp_path / "sora-bot.db").exists()
    assert f"no database at {tmp_path / 'sora-bot.db'}" in missing.stderr
    assert "DATABASE_URL=sqlite:///sora-bot.db" in missing.stderr
    assert "DATABASE_URL=sqlite:///sora-bot-demo.db sora-bot admin" in missing.stderr

    jobs = sora(tmp_path, "admin", "jobs", "--json", db=demo_db)
    assert jobs.returncode == 0 and [j["platform"] for j in json.loads(jobs.stdout)] == ["console"]
    assert jobs.stderr.splitlines()[0].endswith(f"database {demo_db}")

    # DATABASE_URL set: the demo uses it like every command
    shared = tmp_path / "shared.db"
    assert (
        sora(tmp_path, "demo", "-c", "a kite", "--task-seconds", "0.5", db=shared).returncode == 0
    )
    assert len(json.loads(sora(tmp_path, "admin", "jobs", "--json", db=shared).stdout)) == 1

    helped = sora(tmp_path, "--help")
    assert "DATABASE_URL" in helped.stdout and "sora-bot-demo.db" in helped.stdout


# -- item 16: the command line itself ----------------------------------------------------------


def test_quote_takes_the_rest_of_the_line(tmp_path: Path) -> None:
    quoted = sora(tmp_path, "quote", "a cat on a roof", "--json")
    loose = sora(tmp_path, "quote", "a", "cat", "on", "a", "roof", "--json")
    assert quoted.returncode == loose.returncode == 0, loose.stderr
    assert json.loads(loose.stdout) == json.loads(quoted.stdout)
    assert json.loads(loose.stdout)["prompt"] == "a cat on a roof"


def test_global_flags_after_the_sub_command_and_every_help_page_describes_itself(
    tmp_path: Path,
) -> None:
    db = tmp_path / "bot.db"
    assert sora(tmp_path, "admin", "init", db=db).returncode == 0
    for args in (["-v", "admin", "usage"], ["admin", "usage", "-v"]):
        done = sora(tmp_path, *args, db=db)
        assert done.returncode == 0 and " DEBUG " in done.stderr, args
    assert sora(tmp_path, "admin", "usage", db=db).stderr.count(" DEBUG ") == 0

    def pages(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, Any]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield f"{path} {name}", child
                    yield from pages(child, f"{path} {name}")

    described = list(pages(build_parser(), "sora-bot"))
    assert len(described) >= 15
    assert [name for name, page in described if not page.description] == []
    assert all("-v" in page._option_string_actions for _name, page in described)


def test_bad_numbers_are_refused_or_normalised_and_reasons_are_audited(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    assert sora(tmp_path, "admin", "init", db=db).returncode == 0
    none = sora(tmp_path, "admin", "jobs", "--limit", "0", db=db)
    assert none.returncode == 2 and "must be 1 or more" in none.stderr
    demo = sora(tmp_path, "demo", "--task-seconds", "-3", db=db)
    assert demo.returncode == 2 and "more than 0 seconds" in demo.stderr

    approval_id, price = ask_for_approval(db, tmp_path / "media")
    thousand = sora(
        tmp_path, "admin", "set-limit", "slack:T1:U1", "1e3", "--reason", "launch week", db=db
    )
    assert thousand.returncode == 0 and "limit set to 1000 credits" in thousand.stdout
    denied = sora(tmp_path, "admin", "deny", approval_id, "--reason", "not this month", db=db)
    assert denied.returncode == 0, denied.stderr
    audit = exact(sora(tmp_path, "admin", "audit", "--json", db=db).stdout)
    assert [(a["action"], a["amount"]) for a in audit] == [
        ("set-limit", Decimal(1000)),
        ("deny", price),
    ]
    assert audit[0]["reason"] == "launch week"
    assert audit[1]["reason"] == f"denied request {approval_id}: not this month"


def test_a_privileged_port_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from bot.app import bind_listener
    from bot.domain.errors import ConfigError

    def refuse(_sock: socket.socket, _address: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(ConfigError, match="ports below 1024 need privileges"):
        bind_listener("127.0.0.1", 80)
