"""Usage reports, the CSV export and the PNG chart, on a real SQLite file.

Jobs are driven through the real `JobBook` (accept → submitted → delivering → delivered, or
failed / cancelled), so every figure comes from real ledger entries; one test goes through the
whole pipeline (simulator over HTTP). The CLI is run as a separate process.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.app import Core, build_core
from bot.domain.errors import PermissionDenied
from bot.domain.models import Requester, Surface, from_uc
from bot.infra.simulator import Simulator
from bot.services.chart import MAX_BARS, chart_series, describe_chart, render_chart
from bot.services.jobs import JobBook
from bot.services.ledger import Ledger
from bot.services.reports import CSV_COLUMNS, build_report, elapsed_share, report_csv, report_text
from tests.e2e.test_cli import run
from tests.support import RecordingPort, running_core
from tests.support import make_settings as settings_for

ALICE = Requester(platform="test", workspace="W1", user="alice", display_name="Alice")
BOB = Requester(platform="test", workspace="W1", user="bob", display_name="Bob")
CAROL = Requester(platform="test", workspace="W1", user="carol")
DAVE = Requester(platform="test", workspace="W2", user="dave", display_name="Dave")
OCTOBER = dt.datetime(2026, 10, 15, 9, 0, tzinfo=dt.UTC)
D = Decimal


@pytest.fixture
async def core(tmp_path: Path, database_url: str) -> AsyncIterator[Core]:
    settings = settings_for(
        tmp_path, "http://127.0.0.1:9", user_credits_per_period=D(50), database_url=database_url
    )
    built = await build_core(settings, require_key=False)
    try:
        yield built
    finally:
        await built.stop()


async def job(
    core: Core,
    who: Requester,
    outcome: str,
    *,
    charge: str | None = None,
    held: str = "2.5",
    book: JobBook | None = None,
) -> str:
    """One job through the real book: outcome delivered | failed | cancelled | pending. Its
    hold is `held` (the report's arithmetic is under test here, not the price list's)."""
    book = book or core.service.book
    request = core.service.parse("a paper boat")
    accepted = await book.accept(who, request, Surface(channel="C1"), D(held))
    if outcome == "pending":
        return accepted.id
    if outcome == "cancelled":
        await book.finish_cancelled(accepted.id, "test")
        return accepted.id
    assert await book.mark_submitted(accepted.id, f"task-{accepted.id}", 10)
    if outcome == "failed":
        assert await book.finish_failed(accepted.id, "service_error", "boom")
        return accepted.id
    assert await book.mark_delivering(
        accepted.id, "https://x/v.mp4", None if charge is None else D(charge)
    )
    assert await book.finish_delivered(accepted.id)
    return accepted.id


async def scenario(core: Core, *, october: bool = True) -> None:
    """Alice: 2 delivered (odd charges) + 1 failed; Bob: 1 delivered, 1 running, a grant;
    Carol: a cancelled job and a lower limit; Dave in another workspace; W1 has a team budget."""
    service = core.service
    await service.set_team_budget("cli:test", "test", "W1", D(100))
    await service.set_limit("cli:test", CAROL, D(20))
    await service.grant("cli:test", BOB, D(5), "demo day")
    await job(core, ALICE, "delivered", charge="2.5")
    await job(core, ALICE, "delivered", charge="1.333")
    await job(core, ALICE, "failed")
    await job(core, BOB, "delivered", charge="10")
    await job(core, BOB, "pending", held="3.75")
    await job(core, CAROL, "cancelled")
    await job(core, DAVE, "delivered")
    if october:
        money = Ledger(
            core.store,
            default_limit=D(50),
            default_team_budget=D(0),
            period_kind="month",
            timezone=dt.UTC,
            now=lambda: OCTOBER,
        )
        past = JobBook(core.store, money)
        await job(core, ALICE, "delivered", charge="7.5", book=past)


async def ledger_sums(core: Core, period_key: str) -> dict[str, Any]:
    row = await core.store.fetchone(
        "SELECT COALESCE(SUM(CASE WHEN kind = 'capture' THEN amount_uc END), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'hold' THEN amount_uc END), 0)"
        "   - COALESCE(SUM(settles_uc), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'grant' THEN amount_uc END), 0),"
        " COALESCE(SUM(CASE WHEN kind = 'hold' THEN 1 END), 0)"
        " FROM ledger WHERE period_start = ?",
        (period_key,),
    )
    assert row is not None
    return {
        "used": from_uc(int(row[0])),
        "reserved": from_uc(int(row[1])),
        "granted": from_uc(int(row[2])),
        "jobs": int(row[3]),
    }


async def test_report_rows_and_totals_equal_the_ledger(core: Core) -> None:
    await scenario(core)
    report = await build_report(core.service, actor="cli:test")
    by_user = {r.user: r for r in report.rows}
    assert set(by_user) == {"alice", "bob", "carol", "dave"}  # October's job is not here

    alice = by_user["alice"]
    assert (alice.name, alice.jobs, alice.delivered, alice.failed) == ("Alice", 3, 2, 1)
    assert alice.used == D("3.833") and alice.reserved == 0
    assert alice.average_cost == D("1.917")  # 3.833 / 2 = 1.9165, half-up at the uc
    assert alice.limit == 50 and alice.available == D("46.167")
    bob = by_user["bob"]
    assert (bob.jobs, bob.delivered, bob.reserved, bob.granted) == (2, 1, D("3.75"), D(5))
    assert bob.allowance == 55 and bob.available == D("41.25") and bob.average_cost == 10
    carol = by_user["carol"]
    assert (carol.name, carol.cancelled, carol.used, carol.limit) == ("carol", 1, D(0), D(20))
    assert carol.average_cost is None

    totals = report.totals
    sums = await ledger_sums(core, report.period_start.isoformat())
    assert (totals.used, totals.reserved, totals.granted, totals.jobs) == (
        sums["used"],
        sums["reserved"],
        sums["granted"],
        sums["jobs"],
    )
    assert totals.delivered == 4 and totals.failed == 1 and totals.cancelled == 1

    # the team figures are the ledger's own, and only W1 has a budget
    assert [t.key for t in report.teams] == ["test:W1"]
    period = core.service.period_of(None)
    async with core.store.reading() as conn:
        team = await core.ledger.team_figures_in(conn, "test", "W1", period)
    assert team is not None
    w1 = report.teams[0]
    assert (w1.budget, w1.used, w1.reserved) == (
        from_uc(team.limit_uc),
        from_uc(team.used_uc),
        from_uc(team.held_uc),
    )
    assert report.team_of(by_user["dave"]) is None


async def test_csv_has_the_contract_columns_and_sums_to_the_ledger(core: Core) -> None:
    await scenario(core)
    report = await build_report(core.service, actor="cli:test")
    text = report_csv(report)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {"platform", "workspace", "user", "jobs", "used", "reserved", "limit"} <= set(rows[0])
    assert len(rows) == 4
    sums = await ledger_sums(core, report.period_start.isoformat())
    assert sum(D(r["used"]) for r in rows) == sums["used"] == D("16.333")
    assert sum(D(r["reserved"]) for r in rows) == sums["reserved"] == D("3.75")
    assert sum(D(r["granted"]) for r in rows) == sums["granted"]
    assert sum(int(r["jobs"]) for r in rows) == sums["jobs"] == 7
    alice = next(r for r in rows if r["user"] == "alice")
    # plain decimals, as typed by a person: no exponent, no trailing zeros, no float noise
    assert (alice["used"], alice["limit"], alice["average_cost"]) == ("3.833", "50", "1.917")
    assert (
        alice["team_budget"] == "100" and alice["period_start"] == report.period_start.isoformat()
    )
    assert next(r for r in rows if r["user"] == "dave")["team_budget"] == ""
    columns = ("used", "held", "left", "limit", "granted", "allowance", "reserved")
    assert all("E" not in r[c] for r in rows for c in columns)
    # one vocabulary: allowance = limit + granted, left = allowance - used - held
    assert all(D(r["allowance"]) == D(r["limit"]) + D(r["granted"]) for r in rows)
    assert all(D(r["left"]) == D(r["allowance"]) - D(r["used"]) - D(r["held"]) for r in rows)
    assert all(r["held"] == r["reserved"] for r in rows)


async def test_csv_does_not_let_a_display_name_become_a_formula(core: Core) -> None:
    mallory = Requester(platform="test", workspace="W1", user="m", display_name='=HYPERLINK("x")')
    await job(core, mallory, "pending")
    [row] = list(
        csv.DictReader(io.StringIO(report_csv(await build_report(core.service, actor="cli:test"))))
    )
    assert row["name"] == '\'=HYPERLINK("x")' and row["user"] == "m"


async def test_a_past_period_is_chosen_by_any_date_inside_it(core: Core) -> None:
    await scenario(core)
    report = await build_report(core.service, actor="cli:test", day=dt.date(2026, 10, 3))
    assert (report.period_start, report.period_end) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert report.resets_at == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert [(r.user, r.jobs, r.delivered, r.used) for r in report.rows] == [
        ("alice", 1, 1, D("7.5"))
    ]
    assert report.elapsed == 1  # a finished period: the pace is the whole allowance
    assert report.pace(D(50)) == 50
    assert report.totals.used == (await ledger_sums(core, "2026-10-01"))["used"]
    empty = await build_report(core.service, actor="cli:test", day=dt.date(2025, 1, 20))
    assert empty.rows == () and "No usage" in report_text(empty)


async def test_filter_by_workspace_and_admins_only_for_chat(core: Core) -> None:
    await scenario(core, october=False)
    report = await build_report(core.service, actor="cli:test", platform="test", workspace="W2")
    assert [r.user for r in report.rows] == ["dave"] and report.teams == ()
    with pytest.raises(PermissionDenied):
        await build_report(core.service, actor=DAVE, platform="test", workspace="W2")
    w2_admin = DAVE.model_copy(update={"workspace_admin": True})
    with pytest.raises(PermissionDenied):  # an admin of W2 sees W2 only
        await build_report(core.service, actor=w2_admin, platform="test", workspace="W1")
    vouched = await build_report(core.service, actor=w2_admin, platform="test", workspace="W2")
    assert vouched.rows == report.rows


def test_elapsed_share_and_pace_are_exact() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert elapsed_share(start, end, dt.datetime(2026, 11, 16, tzinfo=dt.UTC)) == D("0.5")
    assert elapsed_share(start, end, dt.datetime(2026, 10, 1, tzinfo=dt.UTC)) == 0
    assert elapsed_share(start, end, dt.datetime(2027, 1, 1, tzinfo=dt.UTC)) == 1
    assert elapsed_share(start, end, dt.datetime(2026, 11, 11, tzinfo=dt.UTC)) == D("0.3333")


async def test_text_table_lists_people_by_spend_with_totals(core: Core) -> None:
    await scenario(core)
    now = dt.datetime.combine(core.service.period_of(None).start, dt.time(0), tzinfo=dt.UTC)
    text = report_text(await build_report(core.service, actor="cli:test", now=now))
    lines = text.splitlines()
    assert lines[0].startswith("Usage ") and "0% of the period gone" in lines[0]
    assert lines[1].split()[:3] == ["person", "jobs", "ok"]
    assert [line.split()[0] for line in lines[2:6]] == ["Bob", "Alice", "Dave", "carol"]
    assert lines[6].split()[:6] == ["total", "7", "4", "1", "16.333", "3.75"]
    assert lines[7] == "team test:W1: 13.833 used + 3.75 held of 100 (pace 0)"


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the PNG signature"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{kind!r} chunk is intact"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_text(data: bytes) -> dict[str, str]:
    """The PNG's text chunks: tEXt (latin-1) and uncompressed iTXt (UTF-8)."""
    texts: dict[str, str] = {}
    for kind, body in png_chunks(data):
        if kind == b"tEXt":
            key, value = body.split(b"\x00", 1)
            texts[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = body.split(b"\x00", 1)
            compressed, rest = rest[0], rest[2:]
            _language, _translated, value = rest.split(b"\x00", 2)
            texts[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode(
                "utf-8"
            )
    return texts


def decode_png(data: bytes) -> tuple[int, int, Any]:
    from matplotlib.image import imread

    width, height = struct.unpack(">II", png_chunks(data)[0][1][:8])
    pixels = imread(io.BytesIO(data), format="png")
    return width, height, pixels


async def test_chart_is_a_valid_png_drawn_from_the_reports_figures(core: Core) -> None:
    await scenario(core)
    report = await build_report(core.service, actor="cli:test")
    series = chart_series(report)

    # the series is the report: every person, same figures, pace = elapsed × allowance
    rows = {f"{r.platform}:{r.workspace}:{r.user}": r for r in report.rows}
    assert {b.key for b in series.people} == set(rows)
    for bar in series.people:
        row = rows[bar.key]
        assert (bar.used, bar.reserved, bar.allowance) == (row.used, row.reserved, row.allowance)
        assert bar.pace == report.pace(row.allowance)
    assert [b.spend for b in series.people] == sorted(
        (b.spend for b in series.people), reverse=True
    )
    assert sum(b.used for b in series.people) == report.totals.used
    assert [(t.key, t.budget, t.used, t.reserved) for t in series.teams] == [
        ("test:W1", D(100), D("13.833"), D("3.75"))
    ]

    started = asyncio.get_running_loop().time()
    png = await asyncio.to_thread(render_chart, series)
    took = asyncio.get_running_loop().time() - started
    width, height, pixels = decode_png(png)
    assert pixels.shape[:2] == (height, width) and width == 1000 and height > 300
    assert took < 10
    # the picture is not blank: the bars' colour is there
    assert len({tuple(p) for p in pixels[::7, ::7].reshape(-1, pixels.shape[-1]).tolist()}) > 20
    # the PNG carries its own description, made from the same series
    description = describe_chart(report)
    assert png_text(png)["Description"] == description
    assert "- Bob (W1): used 10, held 3.75, allowance 55" in description
    assert "Team test:W1" in description and "budget of 100" in description
    assert render_chart(report) == png  # same report, same picture


async def test_chart_of_an_empty_period_and_of_many_people(core: Core) -> None:
    empty = await build_report(core.service, actor="cli:test")
    width, height, _ = decode_png(render_chart(empty))
    assert width == 1000 and height > 100
    assert "No usage in this period." in describe_chart(empty)

    people = [Requester(platform="test", workspace="W1", user=f"u{i:02d}") for i in range(34)]
    for i, who in enumerate(people):
        await job(core, who, "pending", held="2.5" if i % 2 else "3.75")
    report = await build_report(core.service, actor="cli:test")
    series = chart_series(report)
    assert len(series.people) == MAX_BARS + 1
    others = series.people[-1]
    assert others.label == "4 others" and others.allowance is None
    assert sum(b.reserved for b in series.people) == report.totals.reserved == D("106.25")
    decode_png(render_chart(series))


async def test_a_report_after_real_jobs_through_the_pipeline(
    tmp_path: Path, database_url: str, sim: Simulator
) -> None:
    port = RecordingPort("test")
    async with running_core(tmp_path, sim, ports=[port], database_url=database_url) as rc:
        service = rc.core.service
        ok = await service.submit(ALICE, service.parse("a lighthouse"), Surface())
        quote = service.quote(service.parse("a lighthouse"))
        bad = await service.submit(
            ALICE, service.parse("a storm [[fail:service_error]]"), Surface()
        )
        await port.wait_for(ok.id, "delivered")
        await port.wait_for(bad.id, "failed")
        await rc.core.tracker.wait_idle(5)
        report = await build_report(service, actor="cli:test")
        charged = (await service.get_job(ok.id)).charged
    [alice] = report.rows
    assert (alice.jobs, alice.delivered, alice.failed) == (2, 1, 1)
    assert alice.used == charged == alice.average_cost == quote and alice.reserved == 0


def prepared_db(tmp_path: Path, build: Callable[[Core], Any]) -> None:
    async def go() -> None:
        settings = settings_for(tmp_path, "http://127.0.0.1:9", user_credits_per_period=D(50))
        core = await build_core(settings, require_key=False)
        try:
            await build(core)
        finally:
            await core.stop()

    asyncio.run(go())


def test_cli_export_and_chart(tmp_path: Path) -> None:
    prepared_db(tmp_path, scenario)
    limit = "50"  # the same default allowance the database was filled with
    exported = run(tmp_path, "admin", "export", "--csv", USER_CREDITS_PER_PERIOD=limit)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {r["user"]: r["used"] for r in rows} == {
        "alice": "3.833",
        "bob": "10",
        "carol": "0",
        "dave": "2.5",
    }
    october = run(
        tmp_path,
        "admin",
        "export",
        "--csv",
        "--period",
        "2026-10-31",
        USER_CREDITS_PER_PERIOD=limit,
    )
    assert [(r["user"], r["used"]) for r in csv.DictReader(io.StringIO(october.stdout))] == [
        ("alice", "7.5")
    ]

    out = tmp_path / "usage.png"
    charted = run(tmp_path, "admin", "chart", "--out", str(out), USER_CREDITS_PER_PERIOD=limit)
    assert charted.returncode == 0, charted.stderr
    width, _, _ = decode_png(out.read_bytes())
    assert width == 1000
    assert "- Bob (W1): used 10, held 3.75, allowance 55" in charted.stdout

    bad = run(tmp_path, "admin", "export", "--csv", "--period", "31/10")
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr and bad.stdout == ""
    nowhere = run(tmp_path, "admin", "chart", "--out", str(tmp_path / "no" / "such" / "dir.png"))
    assert nowhere.returncode == 2 and "cannot write" in nowhere.stderr
