"""The usage chart: a period's spend per person as a PNG people can read at a glance.

    chart_series(report) ─▶ ChartSeries ─▶ render_chart(...) ─▶ PNG bytes
                                     └───▶ describe_chart(...) ─▶ alt text with the same figures

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
- matplotlib is imported lazily (the CLI and chat commands that never draw stay fast) and only
  through its object API with the Agg canvas: no pyplot, no global figure state, no GUI, and no
  font download (DejaVu Sans ships in the wheel).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from bot.services.reports import UsageReport, period_title, plain

if TYPE_CHECKING:
    from matplotlib.axes import Axes
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
    share = _percent(report.elapsed)
    title = f"Credits spent per person, {period_title(report)} ({share}% of the period gone)"
    return ChartSeries(
        title=title,
        elapsed=report.elapsed,
        people=tuple(people),
        teams=teams,
        default_allowance=report.default_allowance,
    )


def _percent(share: Decimal) -> int:
    return int((share * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def describe_chart(data: UsageReport | ChartSeries) -> str:
    """The chart in words, with every figure it was drawn from (alt text, issue notes)."""
    series = data if isinstance(data, ChartSeries) else chart_series(data)
    share = _percent(series.elapsed)
    if series.pace_shown:
        pace = (
            f"; orange diamond = pace ({share}% of the allowance, where use would be now if "
            "spread evenly; held credits do not count towards it)."
        )
    else:
        pace = f"; no pace is shown before {_percent(PACE_FROM)}% of the period is gone."
    lines = [
        series.title + ".",
        "Horizontal bars, one per person, biggest spend on top: solid = credits used "
        "(charged for delivered videos), hatched = credits held for jobs not finished yet; "
        "black tick = the person's allowance (limit + grants)" + pace,
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


def render_chart(
    data: UsageReport | ChartSeries, *, dpi: int = 100, file_format: str = "png"
) -> bytes:
    """The chart as bytes in `file_format` (a value of `FORMATS`; PNG by default), drawn from
    `chart_series` only. PNG, SVG and PDF carry the description as metadata."""
    series = data if isinstance(data, ChartSeries) else chart_series(data)
    fig = chart_figure(series, dpi=dpi)
    out = io.BytesIO()
    description = describe_chart(series)
    metadata: dict[str, str | None] = {
        "png": {"Title": series.title, "Description": description, "Software": None},
        "svg": {"Title": series.title, "Description": description, "Date": None},
        "pdf": {"Title": series.title, "Subject": description, "CreationDate": None},
    }.get(file_format, {})
    fig.savefig(out, format=file_format, metadata=metadata or None)
    return out.getvalue()


def chart_figure(series: ChartSeries, *, dpi: int = 100) -> Figure:
    """The drawn, laid-out figure (on an Agg canvas) that `render_chart` saves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    person_rows = max(len(series.people), 1)
    team_rows = len(series.teams)
    height = 1.6 + 0.42 * person_rows + (1.1 + 0.42 * team_rows if team_rows else 0)
    fig = Figure(figsize=(10, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    if team_rows:
        ax_people, ax_team = fig.subplots(2, 1, height_ratios=[person_rows + 0.6, team_rows + 0.6])
        _draw_teams(ax_team, series)
    else:
        ax_people = fig.subplots()
    _draw_people(ax_people, series)
    fig.suptitle(series.title, fontsize=12)
    fig.canvas.draw()  # lay out once, then widen the panels whose figures do not fit
    for ax in fig.axes:
        _make_room(ax)
    return fig


def _make_room(ax: Axes) -> None:
    """Widen the x axis until every figure written beside a bar ends inside the panel."""
    texts = [t for t in ax.texts if t.get_gid() == FIGURE_GID]
    if not texts:
        return
    renderer = ax.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = ax.get_window_extent(renderer)
    right = max(t.get_window_extent(renderer).x1 for t in texts) + 6  # px of margin
    if right <= box.x1:
        return
    left_x, right_x = ax.get_xlim()
    # Text positions are data values, the text widths pixels: solve for the new right end.
    starts = [ax.transData.transform((t.get_position()[0], 0))[0] for t in texts]
    widths = [t.get_window_extent(renderer).width + 6 for t in texts]
    span = box.x1 - box.x0
    needed = max(
        (x - box.x0) / span * (right_x - left_x) / max(0.2, 1 - w / span)
        for x, w in zip(starts, widths, strict=True)
    )
    ax.set_xlim(left_x, max(right_x, left_x + needed))


def _px(value: Decimal) -> float:
    return float(value)  # drawing only: a pixel position, never arithmetic on credits


def _draw_people(ax: Axes, series: ChartSeries) -> None:
    bars = series.people
    if not bars:
        _draw_empty(ax, series)
        return
    ys = list(range(len(bars)))
    used = [_px(b.used) for b in bars]
    ax.barh(ys, used, color=[USED_OVER if b.over else USED for b in bars], label="used")
    ax.barh(
        ys,
        [_px(b.reserved) for b in bars],
        left=used,
        color=HELD,
        hatch="///",
        edgecolor=USED,
        linewidth=0,
        label="held (in progress)",
    )
    marked = [(y, b) for y, b in zip(ys, bars, strict=True) if b.allowance is not None]
    if marked:
        ax.scatter(
            [_px(b.allowance or Decimal(0)) for _, b in marked],
            [y for y, _ in marked],
            marker="|",
            s=500,
            linewidths=2.5,
            color=LIMIT,
            zorder=3,
            label="allowance (limit + grants)",
        )
        if series.pace_shown:
            ax.scatter(
                [_px(b.pace or Decimal(0)) for _, b in marked],
                [y for y, _ in marked],
                marker="D",
                s=36,
                color=PACE,
                edgecolors="white",
                zorder=4,
                label=f"pace ({_percent(series.elapsed)}% of allowance)",
            )
    right = max(max(_px(b.spend), _px(b.allowance or Decimal(0))) for b in bars)
    for y, b in zip(ys, bars, strict=True):
        text = plain(b.used)
        if b.reserved:
            text += f" + {plain(b.reserved)} held"
        if b.allowance is not None:
            text += f" / {plain(b.allowance)}"
        at = max(_px(b.spend), _px(b.allowance or Decimal(0)))
        ax.text(at + right * 0.015, y, text, va="center", fontsize=8, gid=FIGURE_GID)
    ax.set_xlim(0, right * 1.3 if right > 0 else 1)
    ax.set_yticks(ys, [b.label for b in bars])
    ax.invert_yaxis()
    ax.set_xlabel("credits")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    _legend(ax, series)


def _legend(ax: Axes, series: ChartSeries) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if not series.pace_shown:
        from matplotlib.lines import Line2D

        early = f"no pace before {_percent(PACE_FROM)}% of the period"
        handles.append(Line2D([], [], linestyle="none", label=early))
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False
    )


def _draw_empty(ax: Axes, series: ChartSeries) -> None:
    """An empty period: the axes, each person's allowance and the pace, and a note."""
    each = series.default_allowance
    right = _px(each) * 1.3 if each else 1.0
    if each:
        ax.axvline(
            _px(each),
            color=LIMIT,
            linewidth=2.5,
            label=f"each person's allowance ({plain(each)})",
        )
        if series.pace_shown:
            ax.axvline(
                _px(each * series.elapsed),
                color=PACE,
                linestyle="dashed",
                linewidth=1.5,
                label=f"pace ({_percent(series.elapsed)}% of allowance)",
            )
    ax.text(
        0.5,
        0.5,
        "No usage in this period",
        ha="center",
        va="center",
        fontsize=12,
        transform=ax.transAxes,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9},
    )
    ax.set_xlim(0, right)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("credits")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    _legend(ax, series)


def _draw_teams(ax: Axes, series: ChartSeries) -> None:
    teams = series.teams
    ys = list(range(len(teams)))
    used = [_px(t.used) for t in teams]
    ax.barh(ys, used, color=USED, height=0.5)
    ax.barh(
        ys,
        [_px(t.reserved) for t in teams],
        left=used,
        height=0.5,
        color=HELD,
        hatch="///",
        edgecolor=USED,
        linewidth=0,
    )
    top = max(max(_px(t.used + t.reserved), _px(t.budget)) for t in teams)
    for y, t in zip(ys, teams, strict=True):
        first = y == 0
        ax.vlines(
            _px(t.budget),
            y - 0.4,
            y + 0.4,
            colors=TEAM_LINE,
            linewidth=2.5,
            label="team budget" if first else "_nolegend_",
        )
        if series.pace_shown:
            ax.vlines(
                _px(t.pace),
                y - 0.4,
                y + 0.4,
                colors=TEAM_LINE,
                linestyles="dashed",
                linewidth=1.5,
                label=f"team pace ({_percent(series.elapsed)}% of budget)"
                if first
                else "_nolegend_",
            )
        text = f"{plain(t.used)}"
        if t.reserved:
            text += f" + {plain(t.reserved)} held"
        text += f" / {plain(t.budget)}"
        at = max(_px(t.used + t.reserved), _px(t.budget))
        ax.text(at + top * 0.02, y, text, va="center", fontsize=8, gid=FIGURE_GID)
    ax.set_xlim(0, top * 1.3 if top > 0 else 1)
    ax.set_yticks(ys, [f"team {t.key}" for t in teams])
    ax.set_ylim(len(teams) - 0.5, -0.5)  # top to bottom, like the people panel
    ax.set_xlabel("credits (whole team)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    _legend(ax, series)
