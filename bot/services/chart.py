"""The usage chart: a period's spend per person as a PNG people can read at a glance.

    chart_series(report) ─▶ ChartSeries ─▶ render_chart(...) ─▶ PNG bytes
                                     └───▶ describe_chart(...) ─▶ alt text with the same figures

Invariants:
- `chart_series` is a pure function of the report; the PNG is drawn from the series only, and
  `describe_chart` states the same series in words, so what is drawn, what is said and what the
  report holds agree (the tests compare them; the description is also the PNG's `Description`).
- Σ bars' used/reserved = the report's totals (people beyond `MAX_BARS` fold into one bar).
- Credits stay `Decimal` in the series; they become floats only at the drawing call, as pixels.
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

MAX_BARS = 30  # more people than this: the smallest spenders fold into one "others" bar

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
    return ChartSeries(title=title, elapsed=report.elapsed, people=tuple(people), teams=teams)


def _percent(share: Decimal) -> int:
    return int((share * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def describe_chart(data: UsageReport | ChartSeries) -> str:
    """The chart in words, with every figure it was drawn from (alt text, issue notes)."""
    series = data if isinstance(data, ChartSeries) else chart_series(data)
    share = _percent(series.elapsed)
    lines = [
        series.title + ".",
        "Horizontal bars, one per person, biggest spend on top: solid = credits used "
        "(charged for delivered videos), hatched = credits held for jobs not finished yet; "
        "black tick = the person's allowance (limit + grants); orange diamond = pace "
        f"({share}% of the allowance, where spending would be now if spread evenly).",
    ]
    if not series.people:
        lines.append("No usage in this period.")
    for bar in series.people:
        if bar.allowance is None:
            lines.append(f"- {bar.label}: used {plain(bar.used)}, held {plain(bar.reserved)}")
            continue
        state = "over the allowance" if bar.over else _versus_pace(bar.spend, bar.pace)
        lines.append(
            f"- {bar.label}: used {plain(bar.used)}, held {plain(bar.reserved)}, "
            f"allowance {plain(bar.allowance)}, pace {plain(bar.pace)} — {state}"
        )
    for team in series.teams:
        spend = team.used + team.reserved
        state = "over the budget" if spend > team.budget else _versus_pace(spend, team.pace)
        lines.append(
            f"Team {team.key} (lower panel, one bar; purple line = team budget, dashed = pace): "
            f"used {plain(team.used)}, held {plain(team.reserved)} of a budget of "
            f"{plain(team.budget)}, pace {plain(team.pace)} — {state}"
        )
    return "\n".join(lines)


def _versus_pace(spend: Decimal, pace: Decimal | None) -> str:
    if pace is None:
        return "no pace"
    return "ahead of pace" if spend > pace else "within pace"


def render_chart(data: UsageReport | ChartSeries, *, dpi: int = 100) -> bytes:
    """The chart as PNG bytes, drawn from `chart_series` only."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = data if isinstance(data, ChartSeries) else chart_series(data)
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
    out = io.BytesIO()
    fig.savefig(
        out,
        format="png",
        metadata={"Title": series.title, "Description": describe_chart(series), "Software": None},
    )
    return out.getvalue()


def _px(value: Decimal) -> float:
    return float(value)  # drawing only: a pixel position, never arithmetic on credits


def _draw_people(ax: Axes, series: ChartSeries) -> None:
    bars = series.people
    if not bars:
        ax.text(0.5, 0.5, "No usage in this period", ha="center", va="center", fontsize=12)
        ax.set_axis_off()
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
        ax.text(at + right * 0.015, y, text, va="center", fontsize=8)
    ax.set_xlim(0, right * 1.3 if right > 0 else 1)
    ax.set_yticks(ys, [b.label for b in bars])
    ax.invert_yaxis()
    ax.set_xlabel("credits")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


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
        ax.vlines(
            _px(t.pace),
            y - 0.4,
            y + 0.4,
            colors=TEAM_LINE,
            linestyles="dashed",
            linewidth=1.5,
            label=f"team pace ({_percent(series.elapsed)}% of budget)" if first else "_nolegend_",
        )
        text = f"{plain(t.used)}"
        if t.reserved:
            text += f" + {plain(t.reserved)} held"
        text += f" / {plain(t.budget)}"
        at = max(_px(t.used + t.reserved), _px(t.budget))
        ax.text(at + top * 0.02, y, text, va="center", fontsize=8)
    ax.set_xlim(0, top * 1.3 if top > 0 else 1)
    ax.set_yticks(ys, [f"team {t.key}" for t in teams])
    ax.set_ylim(len(teams) - 0.5, -0.5)  # top to bottom, like the people panel
    ax.set_xlabel("credits (whole team)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
