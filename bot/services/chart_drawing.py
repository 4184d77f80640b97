"""Drawing the usage chart (bot/services/chart.py computes and describes what it shows).

Invariants:
- Drawn from a `ChartSeries` only; credits become floats here, at the drawing call, as pixels.
- matplotlib is imported by whoever imports this module (chart.py does so lazily) and used only
  through its object API with the Agg canvas: no pyplot, no global figure state, no GUI.
- Figures beside the bars end inside their panel (`_make_room` widens the x axis after a first
  layout), so they never run into the legends to the right of the panels.
- No pace mark is drawn while `series.pace_shown` is False; the legend says so instead.
"""

from __future__ import annotations

import io
from decimal import Decimal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bot.services.chart import (
    FIGURE_GID,
    HELD,
    LIMIT,
    PACE,
    PACE_FROM,
    TEAM_LINE,
    USED,
    USED_OVER,
    ChartSeries,
    chart_inches,
    describe_chart,
    percent,
)
from bot.services.reports import plain


def render(series: ChartSeries, *, dpi: int, file_format: str) -> bytes:
    """`series` drawn and saved as `file_format`, with its description as metadata."""
    fig = figure(series, dpi=dpi)
    out = io.BytesIO()
    description = describe_chart(series)
    metadata: dict[str, str | None] = {
        "png": {"Title": series.title, "Description": description, "Software": None},
        "svg": {"Title": series.title, "Description": description, "Date": None},
        "pdf": {"Title": series.title, "Subject": description, "CreationDate": None},
    }.get(file_format, {})
    fig.savefig(out, format=file_format, metadata=metadata or None)
    return out.getvalue()


def figure(series: ChartSeries, *, dpi: int) -> Figure:
    """The drawn, laid-out figure, on an Agg canvas."""
    person_rows = max(len(series.people), 1)
    team_rows = len(series.teams)
    fig = Figure(figsize=chart_inches(series), dpi=dpi, layout="constrained")
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
    if any(b.reserved for b in bars):  # no "held" in the legend when nothing is held
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
                label=f"pace ({percent(series.elapsed)}% of allowance)",
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
        early = f"no pace before {percent(PACE_FROM)}% of the period"
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
                label=f"pace ({percent(series.elapsed)}% of allowance)",
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
                label=f"team pace ({percent(series.elapsed)}% of budget)"
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
