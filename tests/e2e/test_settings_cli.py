"""`sora-bot admin settings PLATFORM:WORKSPACE [KEY VALUE] [--json]` as an operator runs it:
`python -m sora_bot` in a separate process, on each engine, no network."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.domain.workspace_settings import KEYS

ROOT = Path(__file__).resolve().parents[2]
OWN_VARS: tuple[str, ...] = ("EVOLINK_", "DISCORD_", "SLACK_", "PUBLIC_BASE", "DATABASE_")
OWN_VARS += ("MEDIA_", "LOG_", "USER_CREDITS", "TEAM_CREDITS", "BUDGET_", "MAX_JOBS")
OWN_VARS += ("DEFAULT_MODEL",)


def sora(cwd: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(OWN_VARS)}
    environment.update(
        MEDIA_DIR=str(cwd / "media"),
        PYTHONPATH=str(ROOT),
        DATABASE_URL=url,
        USER_CREDITS_PER_PERIOD="250.5",
        BUDGET_PERIOD="month",
        SLACK_ADMIN_CHANNEL="CENVADMIN",
    )
    return subprocess.run(
        [sys.executable, "-m", "sora_bot", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def by_key(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["key"]: entry for entry in shown["settings"]}


def audit(tmp_path: Path, url: str) -> list[dict[str, Any]]:
    done = sora(tmp_path, url, "admin", "audit", "--json")
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = exact(done.stdout)
    return found


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line (log lines aside) of a refused command."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("sora-bot:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_show_change_refuse_and_reset_a_workspaces_settings(
    tmp_path: Path, database_url: str
) -> None:
    url = database_url
    assert sora(tmp_path, url, "admin", "init").returncode == 0
    table = sora(tmp_path, url, "admin", "settings", "slack:T1")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["key", "value", "source", "env"]
    assert [line.split()[0] for line in lines[1:]] == list(KEYS)
    assert "user_credits_per_period  250.5" in table.stdout

    shown = exact(sora(tmp_path, url, "admin", "settings", "slack:T1", "--json").stdout)
    assert (shown["platform"], shown["workspace"]) == ("slack", "T1")
    assert [e["key"] for e in shown["settings"]] == list(KEYS)
    allowance = by_key(shown)["user_credits_per_period"]
    assert allowance == {
        "key": "user_credits_per_period",
        "value": Decimal("250.5"),
        "source": "environment",
        "env": "USER_CREDITS_PER_PERIOD",
    }
    assert by_key(shown)["admin_channel"]["value"] == "CENVADMIN"
    assert by_key(shown)["max_jobs_per_user"]["value"] == 2

    changed = sora(
        tmp_path, url, "admin", "settings", "slack:T1", "user_credits_per_period", "12.345"
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "slack:T1: user_credits_per_period set to 12.345 (was 250.5)\n"
    assert "slack:T1: nobody in this workspace ever used the bot" in changed.stderr  # a typo?
    week = sora(tmp_path, url, "admin", "settings", "slack:T1", "budget_period", "WEEK", "--json")
    after = by_key(exact(week.stdout))
    assert after["budget_period"] == {
        "key": "budget_period",
        "value": "week",
        "source": "workspace",
        "env": "BUDGET_PERIOD",
    }
    assert after["user_credits_per_period"]["value"] == Decimal("12.345")
    other = by_key(exact(sora(tmp_path, url, "admin", "settings", "slack:T2", "--json").stdout))
    assert other["budget_period"]["source"] == "environment", "another workspace is untouched"

    actor = f"cli:{getpass.getuser()}"
    assert [(r["actor"], r["action"], r["target"], r["reason"]) for r in audit(tmp_path, url)] == [
        (actor, "set-setting", "slack:T1", "user_credits_per_period=12.345"),
        (actor, "set-setting", "slack:T1", "budget_period=week"),
    ]

    for args, words in [
        (("budget_period", "fortnight"), "budget_period must be one of day, week, month"),
        (("budget_timezone", "Mars/Base"), "budget_timezone must be an IANA time zone"),
        (("max_jobs_per_user", "0"), "max_jobs_per_user must be a whole number from 1 to 100"),
        (("admin_channel", "#general"), "admin_channel must be a Slack channel id"),
        (("colour", "blue"), "'colour' is not a setting"),
        (("budget_period",), "Give the value too"),
    ]:
        line = refusal(sora(tmp_path, url, "admin", "settings", "slack:T1", *args))
        assert words in line, line
    assert "'slak' is not a platform" in refusal(
        sora(tmp_path, url, "admin", "settings", "slak:T1", "budget_period", "week")
    )
    assert len(audit(tmp_path, url)) == 2, "a refused change writes nothing"

    limit = sora(tmp_path, url, "admin", "set-limit", "slack:T1:U1", "5")
    assert limit.stdout == "slack:T1:U1: limit set to 5 credits per week\n", "its own period"
    reset = sora(tmp_path, url, "admin", "settings", "slack:T1", "budget_period", "default")
    assert reset.stdout == (
        "slack:T1: budget_period back to the environment's BUDGET_PERIOD: month (was week)\n"
    )
    final = by_key(exact(sora(tmp_path, url, "admin", "settings", "slack:T1", "--json").stdout))
    assert final["budget_period"]["source"] == "environment"
    assert final["budget_period"]["value"] == "month"
    assert audit(tmp_path, url)[-1]["reason"] == "budget_period=default"
    assert len(audit(tmp_path, url)) == 4  # two settings, a refused batch (none), a limit, a reset


def test_a_workspace_on_its_own_period_is_exported_in_it(tmp_path: Path) -> None:
    """slack:T1 counts per week: its approved job's entries carry the week's Monday, its own
    export shows that week, and the export of every workspace says where T1 is."""
    from tests.e2e.test_admin_cli import ask_for_approval

    db = tmp_path / "bot.db"
    url = f"sqlite:///{db}"
    assert sora(tmp_path, url, "admin", "init").returncode == 0
    assert (
        sora(tmp_path, url, "admin", "settings", "slack:T1", "budget_period", "week").returncode
        == 0
    )
    approval_id, price = ask_for_approval(db, tmp_path / "media")
    assert sora(tmp_path, url, "admin", "approve", approval_id).returncode == 0

    [row] = exact(sora(tmp_path, url, "admin", "usage", "--json").stdout)
    monday = row["period_start"]
    assert dt.date.fromisoformat(monday).weekday() == 0 and row["reserved"] == price
    own = sora(tmp_path, url, "admin", "export", "--csv", "--workspace", "slack:T1")
    assert own.returncode == 0, own.stderr
    [line] = list(csv.DictReader(io.StringIO(own.stdout)))
    assert (line["workspace"], line["period_start"], Decimal(line["held"])) == ("T1", monday, price)
    every = sora(tmp_path, url, "admin", "export", "--csv")
    assert every.returncode == 0
    assert "warning: slack:T1 counts its budget per week in UTC" in every.stderr
