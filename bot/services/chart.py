"""The usage chart: a period's spend per person as a PNG people can read at a glance.

    chart_series(report) ─▶ ChartSeries ─▶ render_chart(...) ─▶ PNG (or JPEG, SVG, PDF) bytes
                                     └───▶ describe_chart(...) ─▶ alt text with the same figures

The drawing itself is bot/services/chart_drawing.py (imported only when a chart is drawn).

Invariants:
- `chart_series` is a pure function of the report; the PNG is drawn from the series only, and
  `describe_chart` states the same series in words, so what is drawn, what is said and what the
  report holds agree (the tests compare them; the description is also the PNG's `Description`).
- Σ bars' used/reserved = the report's totals (people beyond `MAX_BARS` fold into one bar).
- Credits stay `Decimal` in the series; they become floats only at the drawing call, as pixels.
- "Ahead of pace" compares what was *used* with the pace: held credits are not spent yet (a
  job in progress may fail and be released). Before `PACE_FROM` of the period is gone the pace
  is near zero and means nothing: no pace marks are drawn and none is judged (`pace_shown`).
- Figures written beside the bars always fit inside their panel (the x axis is widened until
  they do), so they never run into the legends, which sit to the right of the panels.
- An empty period is still a chart: its axes, each person's allowance (USER_CREDITS_PER_PERIOD)
  and the pace, with "No usage in this period" across it.
- The file format follows the name: `.png` (default), `.jpg`/`.jpeg`, `.svg` or `.pdf`
  (`chart_format`); any other name is refused with the list, nothing written.
- matplotlib is imported lazily, with chart_drawing (the CLI and chat commands that never draw
  stay fast), and used only through its object API with the Agg canvas: no pyplot, no global
  figure state, no GUI, and no font download (DejaVu Sans ships in the wheel).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from bot.services.reports import UsageReport, period_title, plain

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_GID = "figure"  # the gid of the value texts beside bars (`_make_room` fits them)
MAX_BARS = 30  # more people than this: the smallest spenders fold into one "others" bar
PACE_FROM = Decimal("0.1")  # share of the period gone before a pace means anything
#: file suffix → matplotlib's format name
FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".svg": "svg", ".pdf": "pdf"}

USED = "#2f6db5"
USED_OVER = "#c0392b"  # used + held beyond the allowance
HELD = "#a8c5ea"
LIMIT = "#222222"
PACE = "#e08a00"
TEAM_LINE = "#7b1fa2"


@dataclass(frozen=True)
class PersonBar:
    key: str  # platform:workspace:user; "" for the folded "others" bar
    label: str
    used: Decimal
    reserved: Decimal
    allowance: Decimal | None  # limit + grants; None on the "others" bar
    pace: Decimal | None  # elapsed × allowance

    @property
    def spend(self) -> Decimal:
        return self.used + self.reserved

    @property
    def over(self) -> bool:
        return self.allowance is not None and self.spend > self.allowance


@dataclass(frozen=True)
class TeamBar:
    key: str  # platform:workspace
    used: Decimal
    reserved: Decimal
    budget: Decimal
    pace: Decimal


@dataclass(frozen=True)
class ChartSeries:
    title: str
    elapsed: Decimal
    people: tuple[PersonBar, ...]  # biggest spend first
    teams: tuple[TeamBar, ...]
    default_allowance: Decimal | None = None  # drawn on an empty period's chart

    @property
    def pace_shown(self) -> bool:
        """False early in the period (< PACE_FROM gone): the pace is then no yardstick."""
        return self.elapsed >= PACE_FROM


class ChartFormatError(ValueError):
    """A file name whose suffix is not a format the chart can be written in."""


def chart_format(name: str) -> str:
    """The format a file name asks for (matplotlib's name); ChartFormatError otherwise."""
    suffix = name[name.rfind(".") :].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if suffix not in FORMATS:
        raise ChartFormatError(
            f"cannot write the chart as {name!r}: name the file .png, .jpg, .svg or .pdf"
        )
    return FORMATS[suffix]


def chart_series(report: UsageReport) -> ChartSeries:
    """What the chart shows, computed from the report alone."""
    many = len({r.workspace_key for r in report.rows}) > 1
    ranked = sorted(report.rows, key=lambda r: (-(r.used + r.reserved), r.name, r.user))
    people = [
        PersonBar(
            key=f"{r.platform}:{r.workspace}:{r.user}",
            label=f"{r.name} ({r.workspace})" if many else r.name,
            used=r.used,
            reserved=r.reserved,
            allowance=r.allowance,
            pace=report.pace(r.allowance),
        )
        for r in ranked[:MAX_BARS]
    ]
    rest = ranked[MAX_BARS:]
    if rest:
        people.append(
            PersonBar(
                key="",
                label=f"{len(rest)} others",
                used=sum((r.used for r in rest), Decimal(0)),
                reserved=sum((r.reserved for r in rest), Decimal(0)),
                allowance=None,
                pace=None,
            )
        )
    teams = tuple(
        TeamBar(
            key=t.key,
            used=t.used,
            reserved=t.reserved,
            budget=t.budget,
            pace=report.pace(t.budget),
        )
        for t in report.teams
    )
    share = percent(report.elapsed)
    title = f"Credits spent per person, {period_title(report)} ({share}% of the period gone)"
    return ChartSeries(
        title=title,
        elapsed=report.elapsed,
        people=tuple(people),
        teams=teams,
        default_allowance=report.default_allowance,
    )


def percent(share: Decimal) -> int:
    return int((share * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def describe_chart(data: UsageReport | ChartSeries) -> str:
    """The chart in words, with every figure it was drawn from (alt text, issue notes)."""
    series = data if isinstance(data, ChartSeries) else chart_series(data)
    share = percent(series.elapsed)
    if series.pace_shown:
        pace = (
            f"; orange diamond = pace ({share}% of the allowance, where use would be now if "
            "spread evenly; held credits do not count towards it)."
        )
    else:
        pace = f"; no pace is shown before {percent(PACE_FROM)}% of the period is gone."
    lines = [
        series.title + ".",
        "Horizontal bars, one per person, biggest spend on top: solid = credits used "
        "(charged for delivered videos), "
        + (
            "hatched = credits held for jobs not finished yet; "
            if any(bar.reserved for bar in series.people)
            else ""
        )
        + "black tick = the person's allowance (limit + grants)"
        + pace,
    ]
    if not series.people:
        each = series.default_allowance
        lines.append(
            "No usage in this period."
            + (f" Each person's allowance is {plain(each)}." if each is not None else "")
        )
    for bar in series.people:
        if bar.allowance is None:
            lines.append(f"- {bar.label}: used {plain(bar.used)}, held {plain(bar.reserved)}")
            continue
        state = "over the allowance" if bar.over else _versus_pace(series, bar.used, bar.pace)
        lines.append(
            f"- {bar.label}: used {plain(bar.used)}, held {plain(bar.reserved)}, "
            f"allowance {plain(bar.allowance)}{_pace_words(series, bar.pace)} — {state}"
        )
    for team in series.teams:
        spend = team.used + team.reserved
        over = spend > team.budget
        state = "over the budget" if over else _versus_pace(series, team.used, team.pace)
        lines.append(
            f"Team {team.key} (lower panel, one bar; purple line = team budget"
            + (", dashed = pace" if series.pace_shown else "")
            + f"): used {plain(team.used)}, held {plain(team.reserved)} of a budget of "
            f"{plain(team.budget)}{_pace_words(series, team.pace)} — {state}"
        )
    return "\n".join(lines)


def _pace_words(series: ChartSeries, pace: Decimal | None) -> str:
    return f", pace {plain(pace)}" if series.pace_shown and pace is not None else ""


def _versus_pace(series: ChartSeries, used: Decimal, pace: Decimal | None) -> str:
    """Used (not held) against the pace; nothing to say early in the period."""
    if pace is None:
        return "no pace"
    if not series.pace_shown:
        return "too early in the period for a pace"
    return "ahead of pace" if used > pace else "within pace"


def chart_inches(series: ChartSeries) -> tuple[float, float]:
    """The figure's (width, height) in inches: 10 wide, as tall as its rows need."""
    person_rows = max(len(series.people), 1)
    team_rows = len(series.teams)
    return 10.0, 1.6 + 0.42 * person_rows + (1.1 + 0.42 * team_rows if team_rows else 0)


def chart_pixels(data: UsageReport | ChartSeries, *, dpi: int = 100) -> tuple[int, int]:
    """The (width, height) in pixels of `render_chart`'s PNG, without drawing it (a page's
    <img width height>, so nothing moves when it loads)."""
    series = data if isinstance(data, ChartSeries) else chart_series(data)
    width, height = chart_inches(series)
    return int(width * dpi), int(height * dpi)


def render_chart(
    data: UsageReport | ChartSeries, *, dpi: int = 100, file_format: str = "png"
) -> bytes:
    """The chart as bytes in `file_format` (a value of `FORMATS`; PNG by default), drawn from
    `chart_series` only (bot/services/chart_drawing.py). PNG, SVG and PDF carry the
    description as metadata."""
    from bot.services import chart_drawing

    series = data if isinstance(data, ChartSeries) else chart_series(data)
    return chart_drawing.render(series, dpi=dpi, file_format=file_format)


def chart_figure(series: ChartSeries, *, dpi: int = 100) -> Figure:
    """The drawn, laid-out matplotlib figure that `render_chart` saves (tests look at it)."""
    from bot.services import chart_drawing

    return chart_drawing.figure(series, dpi=dpi)
