"""The command line on PostgreSQL (DATABASE_URL=postgresql://…), in separate processes as an
operator runs it: the demo orders a video into the database, `admin` commands read and change
the same ledger, logs name the database without its password, and a database that cannot be
opened is one clear line (exit 2), not a traceback."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from tests.e2e.test_admin_cli import exact, sora
from tests.pg import PgServer

PASSWORD = "pw-never-logged"  # the test server trusts local users; the password is ignored


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@")


def test_demo_and_admin_commands_share_one_postgresql_ledger(tmp_path: Path, pg_url: str) -> None:
    url = _with_password(pg_url)
    demo = sora(tmp_path, "demo", "-c", "/sora a cat playing piano --duration 10", DATABASE_URL=url)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    jobs = exact(sora(tmp_path, "admin", "jobs", "--json", DATABASE_URL=url).stdout)
    [job] = jobs
    assert job["status"] == "delivered" and job["charged_credits"] == job["reserved_credits"]
    who = f"{job['platform']}:{job['workspace']}:{job['user']}"

    granted = sora(tmp_path, "admin", "grant", who, "5", DATABASE_URL=url)
    assert granted.returncode == 0, granted.stderr
    [usage] = exact(sora(tmp_path, "admin", "usage", "--json", DATABASE_URL=url).stdout)
    assert usage["granted"] == 5 and usage["used"] == job["charged_credits"]
    assert usage["available"] == usage["limit"] + Decimal(5) - usage["used"]
    audit = json.loads(sora(tmp_path, "admin", "audit", "--json", DATABASE_URL=url).stdout)
    assert [(a["action"], a["target"]) for a in audit] == [("grant", who)]

    database = pg_url.rsplit("/", 1)[-1]
    for run in (demo, granted):
        assert f"PostgreSQL database {database} on 127.0.0.1" in run.stderr
        assert PASSWORD not in run.stdout + run.stderr


def test_a_database_that_cannot_be_opened_is_one_clear_line(
    tmp_path: Path, pg_server: PgServer
) -> None:
    url = _with_password(pg_server.url("not_created"))
    done = sora(tmp_path, "admin", "jobs", "--json", DATABASE_URL=url)
    assert done.returncode == 2
    assert "not_created" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr
