"""The command line as a user runs it: a separate process, env vars, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bot.domain.models import fmt_credits
from bot.infra.simulator import clip_for
from sora_bot.demo import DEMO_MODEL
from tests.prices import DEFAULT_MODEL, LONG, LONGEST, price_of

ROOT = Path(__file__).resolve().parents[2]


def run(
    tmp_path: Path, *args: str, timeout: float = 90, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("EVOLINK_", "DISCORD_", "SLACK_", "PUBLIC_BASE", "DATABASE_", "MEDIA_")
        )
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        MEDIA_DIR=str(tmp_path / "media"),
        PYTHONPATH=str(ROOT),
    )
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "sora_bot", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_one_command_delivers_a_playable_mp4_and_admin_sees_it(tmp_path: Path) -> None:
    done = run(
        tmp_path, "demo", "-c", "/sora a cat playing piano --duration 10", "--task-seconds", "1"
    )
    assert done.returncode == 0, done.stderr + done.stdout
    saved = Path(tmp_path / done.stdout.strip().splitlines()[-1])
    data = saved.read_bytes()
    assert data[4:8] == b"ftyp", "an MP4 file"

    jobs = json.loads(run(tmp_path, "admin", "jobs", "--json").stdout)
    assert len(jobs) == 1
    job = jobs[0]
    assert data == clip_for(job["aspect_ratio"], job["duration"]), (
        "the clip of its shape and length"
    )
    assert set(job) == {
        "id",
        "platform",
        "workspace",
        "user",
        "status",
        "model",
        "duration",
        "aspect_ratio",
        "prompt",
        "task_id",
        "reserved_credits",
        "held_credits",
        "charged_credits",
        "error",
        "created_at",
        "finished_at",
    }
    assert job["status"] == "delivered" and job["prompt"] == "a cat playing piano"
    demo_price = price_of("a cat playing piano --duration 10", DEMO_MODEL)
    assert job["duration"] == 10 and job["model"] == DEMO_MODEL
    assert Decimal(str(job["reserved_credits"])) == demo_price
    assert job["task_id"].startswith("task-unified-")

    usage = json.loads(run(tmp_path, "admin", "usage", "--json").stdout)
    assert len(usage) == 1
    row = usage[0]
    assert set(row) == {
        "platform",
        "workspace",
        "user",
        "period_start",
        "limit",
        "granted",
        "used",
        "reserved",
        "available",
        "held",
        "allowance",
    }
    assert row["limit"] == 300 and row["reserved"] == 0 and row["used"] == job["charged_credits"]
    assert row["available"] == 300 - row["used"]


def test_demo_refusal_exits_non_zero_with_the_reason(tmp_path: Path) -> None:
    done = run(tmp_path, "demo", "-c", "/sora a cat", USER_CREDITS_PER_PERIOD="1")
    assert done.returncode != 0
    assert fmt_credits(price_of("a cat", DEMO_MODEL)) in done.stdout and "resets" in done.stdout


def test_demo_failed_job_exits_1_and_says_why(tmp_path: Path) -> None:
    done = run(tmp_path, "demo", "-c", "/sora a cat --model nope")
    assert done.returncode == 2 and "nope" in done.stdout


def test_admin_quota_commands_and_audit(tmp_path: Path) -> None:
    assert run(tmp_path, "admin", "init").returncode == 0  # admin commands create no database
    assert run(tmp_path, "admin", "set-limit", "slack:T1:U1", "12.5").returncode == 0
    assert (
        run(tmp_path, "admin", "grant", "slack:T1:U1", "5", "--reason", "launch week").returncode
        == 0
    )
    assert run(tmp_path, "admin", "set-team-budget", "slack:T1", "100").returncode == 0
    bad = run(tmp_path, "admin", "grant", "slack:T1", "5")
    assert bad.returncode == 2 and "PLATFORM:WORKSPACE:USER" in bad.stderr
    negative = run(tmp_path, "admin", "set-limit", "slack:T1:U1", "-3")
    assert negative.returncode == 2
    audit = json.loads(run(tmp_path, "admin", "audit", "--json").stdout)
    assert [a["action"] for a in audit] == ["set-limit", "grant", "set-team-budget"]
    assert audit[0]["amount"] == 12.5 and audit[1]["reason"] == "launch week"
    assert all(a["actor"].startswith("cli:") for a in audit)
    assert set(audit[0]) == {"at", "actor", "action", "target", "amount", "reason"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"a cat playing piano --duration {LONGEST}",
            {"model": DEFAULT_MODEL, "duration": LONGEST, "credits": float(LONG)},
        ),
        ("a cat -m sora-2-preview --ar 16:9", {"aspect_ratio": "1280x720", "credits": 23.04}),
    ],
)
def test_quote_json(tmp_path: Path, text: str, expected: dict[str, object]) -> None:
    done = run(tmp_path, "quote", text, "--json")
    assert done.returncode == 0
    answer = json.loads(done.stdout, parse_float=Decimal)
    assert {"model", "prompt", "duration", "aspect_ratio", "credits"} <= set(answer)
    assert {"price_options", "pricing_version"} <= set(answer)
    assert {k: float(v) if k == "credits" else v for k, v in answer.items()}.items() >= (
        expected.items()
    )
    assert not (tmp_path / "bot.db").exists(), "quote holds nothing (does not even open the store)"


def test_quote_invalid_prints_error_and_exits_2(tmp_path: Path) -> None:
    done = run(tmp_path, "quote", "a cat --duration 7", "--json")
    assert done.returncode == 2
    assert "7" in json.loads(done.stdout)["error"]


def test_quote_refuses_an_image_on_an_internal_host(tmp_path: Path) -> None:
    text = "a cat --image http://169.254.169.254/latest/meta-data"
    done = run(tmp_path, "quote", text, "--json")
    assert done.returncode == 2
    assert "public link" in json.loads(done.stdout)["error"]
    assert not (tmp_path / "bot.db").exists()


def test_run_without_tokens_says_what_to_set(tmp_path: Path) -> None:
    done = run(tmp_path, "run")
    assert done.returncode == 2
    assert "DISCORD_TOKEN" in done.stderr and "SLACK_BOT_TOKEN" in done.stderr
    assert "sora-bot demo" in done.stderr


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    done = run(tmp_path, "admin", "usage", BUDGET_PERIOD="fortnight")
    assert done.returncode == 2 and "BUDGET_PERIOD" in done.stderr and "month" in done.stderr
    done = run(tmp_path, "admin", "usage", PUBLIC_BASE_URL="http://bot.example.com")
    assert done.returncode == 2 and "PUBLIC_BASE_URL" in done.stderr and "https" in done.stderr


def test_check_names_a_missing_key(tmp_path: Path) -> None:
    done = run(tmp_path, "check", EVOLINK_API_KEY="", EVOLINK_BASE_URL="http://127.0.0.1:9")
    assert done.returncode == 1
    assert "EVOLINK_API_KEY is not set" in done.stdout


async def test_check_reads_the_balance_from_evolink(tmp_path: Path) -> None:
    import asyncio

    from tests.support import running_simulator

    async with running_simulator() as sim:
        done = await asyncio.to_thread(
            run, tmp_path, "check", EVOLINK_API_KEY="sk-secret-123", EVOLINK_BASE_URL=sim.base_url
        )
    # `run` would refuse (no chat platform), so `check` fails too, after reading the balance
    assert done.returncode == 1, done.stdout
    assert "✓ EvoLink at" in done.stdout and "key accepted, 10000 credits left" in done.stdout
    assert "✗ No chat platform is configured" in done.stdout
    assert "sk-secret-123" not in done.stdout + done.stderr


def test_admin_approvals_from_the_shell(tmp_path: Path) -> None:
    """A request waiting for an admin is listed, approved once, and a second decision fails."""
    import asyncio

    from bot.app import build_core
    from bot.domain.models import Requester, Surface
    from tests.support import make_settings

    async def ask() -> tuple[str, Decimal]:
        settings = make_settings(tmp_path, "http://127.0.0.1:9", media_dir=tmp_path / "media")
        core = await build_core(settings)
        try:
            who = Requester(platform="slack", workspace="T1", user="U1")
            request = core.service.parse("a whale")
            approval = await core.service.ask_admin(who, request, Surface())
            return approval.id, core.service.quote(request)
        finally:
            await core.stop()

    approval_id, price = asyncio.run(ask())
    listed = json.loads(run(tmp_path, "admin", "approvals", "--json").stdout, parse_float=Decimal)
    assert [a["id"] for a in listed] == [approval_id] and listed[0]["price"] == price
    approved = run(tmp_path, "admin", "approve", approval_id)
    assert approved.returncode == 0 and "approved; job j" in approved.stdout
    again = run(tmp_path, "admin", "deny", approval_id)
    assert again.returncode == 2 and "already approved by cli:" in again.stderr
    jobs = json.loads(run(tmp_path, "admin", "jobs", "--json").stdout)
    assert len(jobs) == 1 and jobs[0]["user"] == "U1" and jobs[0]["status"] == "pending"
    audit = json.loads(run(tmp_path, "admin", "audit", "--json").stdout, parse_float=Decimal)
    assert [a["action"] for a in audit] == ["approve"] and audit[0]["amount"] == price


def test_python_dash_m_bot_is_the_same_program() -> None:
    """The outside contract: `python -m bot` is `sora-bot`."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "usage: sora-bot" in done.stdout
