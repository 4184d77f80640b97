"""The usage chart as a reader sees it: figures inside their panels (never in the legends), no
pace marks early in the period, held credits not judged as spending, an empty period still a
chart with its axes and allowance, and the file format the name asks for (or a clear refusal).

Colours are looked for in the decoded pixels: what is judged is the picture, not the code."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.app import Core
from bot.domain.models import Requester
from bot.services.chart import (
    FIGURE_GID,
    LIMIT,
    PACE,
    PACE_FROM,
    chart_figure,
    chart_series,
    describe_chart,
    render_chart,
)
from bot.services.reports import PersonUsage, TeamUsage, UsageReport
from tests.core.test_reports import prepared_db
from tests.e2e.test_cli import run

D = Decimal


def person(name: str, used: str, held: str, limit: str = "300") -> PersonUsage:
    return PersonUsage(
        platform="slack",
        workspace="T0123456",
        user=f"U{name.upper()}",
        name=name,
        jobs=3,
        delivered=2,
        failed=0,
        cancelled=0,
        used=D(used),
        reserved=D(held),
        limit=D(limit),
        granted=D(0),
    )


def report(elapsed: str, rows: list[PersonUsage], teams: tuple[TeamUsage, ...] = ()) -> UsageReport:
    return UsageReport(
        period_start=dt.date(2026, 12, 1),
        period_end=dt.date(2026, 12, 31),
        resets_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        generated_at=dt.datetime(2026, 12, 14, tzinfo=dt.UTC),
        elapsed=D(elapsed),
        rows=tuple(rows),
        teams=teams,
        default_allowance=D(300),
    )


PEOPLE = [person("Carol", "250", "20"), person("Alice", "100", "100"), person("dan", "0", "12.5")]
TEAM = (TeamUsage("slack", "T0123456", D(99_999), D("99998.125"), D("0.875")),)


def pixels(png: bytes) -> Any:
    from matplotlib.image import imread

    return imread(io.BytesIO(png), format="png")


def has_colour(png: bytes, colour: str) -> bool:
    import numpy as np
    from matplotlib.colors import to_rgb

    rgb = pixels(png)[..., :3]
    return bool((np.abs(rgb - np.array(to_rgb(colour))).max(axis=-1) < 0.02).any())


def test_figures_beside_the_bars_stay_inside_their_panel_and_out_of_the_legend() -> None:
    """Long figures ("99998.125 + 0.875 held / 99999") next to a bar at the budget line used
    to run past the panel into its legend."""
    fig = chart_figure(chart_series(report("0.5", PEOPLE, TEAM)))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    checked = 0
    for ax in fig.axes:
        panel = ax.get_window_extent(renderer)
        legend_box = ax.get_legend()
        assert legend_box is not None
        legend = legend_box.get_window_extent(renderer)
        for text in (t for t in ax.texts if t.get_gid() == FIGURE_GID):
            box = text.get_window_extent(renderer)
            assert panel.x0 <= box.x0 and box.x1 <= panel.x1, text.get_text()
            assert box.x1 < legend.x0, text.get_text()
            checked += 1
    assert checked == len(PEOPLE) + len(TEAM)


def test_no_pace_marks_early_in_the_period() -> None:
    early = report(str(PACE_FROM - D("0.01")), PEOPLE, TEAM)
    series = chart_series(early)
    assert not series.pace_shown
    png = render_chart(early)
    assert not has_colour(png, PACE)  # no orange diamond anywhere
    words = describe_chart(early)
    assert "no pace is shown before 10% of the period" in words
    assert "ahead of pace" not in words and "within pace" not in words

    later = report(str(PACE_FROM), PEOPLE, TEAM)
    assert chart_series(later).pace_shown
    assert has_colour(render_chart(later), PACE)


def test_held_credits_are_not_spending_ahead_of_pace() -> None:
    # Half the period gone, allowance 300: pace 150. Alice used 100 and holds 100 (200 in
    # all): still within pace. Carol used 250: ahead.
    words = describe_chart(report("0.5", PEOPLE))
    assert "- Alice: used 100, held 100, allowance 300, pace 150 — within pace" in words
    assert "- Carol: used 250, held 20, allowance 300, pace 150 — ahead of pace" in words
    assert "- dan: used 0, held 12.5, allowance 300, pace 150 — within pace" in words


def test_an_empty_period_is_a_chart_with_its_axes_and_the_allowance() -> None:
    empty = report("0.5", [])
    fig = chart_figure(chart_series(empty))
    (ax,) = fig.axes
    assert ax.axison and ax.get_xlim() == (0.0, 390.0)  # the allowance (300) and room
    assert ax.get_xlabel() == "credits"
    legend = ax.get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["each person's allowance (300)", "pace (50% of allowance)"]
    png = render_chart(empty)
    assert has_colour(png, LIMIT) and has_colour(png, PACE)
    assert "No usage in this period. Each person's allowance is 300." in describe_chart(empty)


def test_cli_chart_writes_the_format_the_name_asks_for(tmp_path: Path) -> None:
    async def limits(core: Core) -> None:  # a database with some admin state, no jobs needed
        who = Requester(platform="slack", workspace="T0123", user="U0456")
        await core.service.set_limit("cli:test", who, D(150))

    prepared_db(tmp_path, limits)
    magic = {
        "usage.png": b"\x89PNG\r\n\x1a\n",
        "usage.JPG": b"\xff\xd8\xff",
        "usage.jpeg": b"\xff\xd8\xff",
        "usage.svg": b"<?xml",
        "usage.pdf": b"%PDF",
    }
    for name, start in magic.items():
        out = tmp_path / name
        done = run(tmp_path, "admin", "chart", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert out.read_bytes().startswith(start), name
        assert f"chart written to {out}" in done.stdout
    assert "Credits spent per person" in (tmp_path / "usage.svg").read_text()  # a real SVG

    for name in ("usage.gif", "usage", "usage.png.txt"):
        refused = run(tmp_path, "admin", "chart", "--out", str(tmp_path / name))
        assert refused.returncode == 2, refused.stderr
        assert "name the file .png, .jpg, .svg or .pdf" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not (tmp_path / name).exists()


def test_held_is_in_the_legend_and_the_description_only_when_something_is_held() -> None:
    def legend_of(people: list[PersonUsage]) -> list[str]:
        fig = chart_figure(chart_series(report("0.5", people)))
        legend = fig.axes[0].get_legend()
        assert legend is not None
        return [t.get_text() for t in legend.get_texts()]

    nothing_held = [person("Carol", "250", "0"), person("Alice", "100", "0")]
    assert "held (in progress)" not in legend_of(nothing_held)
    assert "hatched" not in describe_chart(chart_series(report("0.5", nothing_held)))
    assert "held (in progress)" in legend_of(PEOPLE)
    assert "hatched" in describe_chart(chart_series(report("0.5", PEOPLE)))
