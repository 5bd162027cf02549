"""The run history charts of a sync's page: the maths (scales, ticks, point positions, which points get a label) and
the figures' wording ("1,993 → 3, −99.8 %"); templates/syncs/partials/history_charts.html draws the SVG.

Two charts, one scale each: the audience size the platform reported (people) and the match rate (0–100 %). One
line with both on a shared axis could not say what a height meant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from syncs.models import SyncRun

MINUS = "\u2212"  # a real minus sign: "−99.8 %", not a hyphen

# The SVG's own coordinates (the page scales it to its column).
WIDTH, HEIGHT = 400, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 28, 24, 30
# Labels closer than this (x, in SVG units) to one already placed are left to the points' tooltips.
LABEL_SPACING = 40
# The first and last points sit this far inside the axes, so their labels clear the axis labels.
INSET = 20
# A change at least this large between two runs gets both its points labelled.
NOTABLE_CHANGE = 0.10


def count(value: int | None) -> str:
    """A count with thousands separators ("1,993"); "—" when unknown."""
    return "—" if value is None else f"{value:,}"


def signed_percent(value: float) -> str:
    """"+12.5 %", "−99.8 %" (a real minus sign)."""
    text = f"{abs(value):.1f} %"
    return f"+{text}" if value > 0 else (f"{MINUS}{text}" if value < 0 else "±0 %")


def size_change(before: int | None, after: int | None) -> str:
    """"1,993 → 3, −99.8 %": a size before and after, and the change in per cent; "" when either is unknown."""
    if before is None or after is None:
        return ""
    if before == 0:
        return f"{count(before)} → {count(after)}"
    return f"{count(before)} → {count(after)}, {signed_percent((after - before) * 100 / before)}"


def rate_change(before: float | None, after: float | None) -> str:
    """"61 % → 58 %, −3 points" for match rates (0..1)."""
    if before is None or after is None:
        return ""
    points = round(after * 100) - round(before * 100)
    sign = "+" if points > 0 else (MINUS if points < 0 else "±")
    unit = "point" if abs(points) == 1 else "points"
    return f"{round(before * 100)} % → {round(after * 100)} %, {sign}{abs(points)} {unit}"


def compact(value: float) -> str:
    """Axis labels: 950, 9,500, 95 k, 9.5 M."""
    if value < 10_000:
        return f"{value:,.0f}"
    if value < 1_000_000:
        return f"{value / 1000:,.0f} k"
    millions = value / 1_000_000
    return f"{millions:,.1f} M".replace(".0 M", " M")


def nice_ticks(top: float, *, steps: int = 4) -> list[float]:
    """0 and a few round values (1, 2, 2.5, 5 × 10^k apart) up to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:  # counts: no fractional people on the axis
        step = 1
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(ticks[-1] + step)
    return ticks


@dataclass
class Point:
    x: float
    y: float
    value: float
    text: str  # the value as shown
    when: str  # the run's time, as shown in its tooltip
    run_id: int
    status: str
    labelled: bool = False
    label_y: float = 0.0


@dataclass
class Chart:
    key: str
    title: str
    unit: str
    points: list[Point]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    summary: list[str] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM

    @property
    def line(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)

    @property
    def tick_x(self) -> int:
        """Where the y-axis labels end (right-aligned, left of the axis)."""
        return self.left - 6

    @property
    def date_y(self) -> int:
        """The baseline of the x-axis labels."""
        return self.bottom + 18

    @property
    def description(self) -> str:
        return " ".join(self.summary)


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _date_labels(moments: list[datetime]) -> list[str]:
    """Short x-axis labels: the time of day when every run was on one day, else the day."""
    local = [timezone.localtime(m) for m in moments]
    if len({m.date() for m in local}) == 1:
        if len({m.strftime("%H:%M") for m in local}) < len(local):  # several runs within a minute
            return [m.strftime("%H:%M:%S") for m in local]
        return [m.strftime("%H:%M") for m in local]
    if len({m.year for m in local}) == 1:
        return [f"{m.day} {m:%b}" for m in local]
    return [f"{m:%b} {m.year}" for m in local]


def _x_ticks(xs: list[float], labels: list[str]) -> list[tuple[float, str]]:
    picks = [0, len(xs) - 1] if len(xs) < 5 else [0, len(xs) // 2, len(xs) - 1]
    if len(xs) <= 3:
        picks = list(range(len(xs)))
    ticks, seen = [], set()
    for i in picks:
        if labels[i] in seen and i not in (0, len(xs) - 1):
            continue
        seen.add(labels[i])
        ticks.append((round(xs[i], 1), labels[i]))
    return ticks


def _choose_labels(points: list[Point], values: list[float]) -> None:
    """Label the last and first points, both ends of every notable change, the highest and the lowest, as long as
    labels do not sit on top of each other (the tooltips carry every value)."""
    n = len(points)
    wanted = [n - 1, 0]
    for i in range(1, n):
        before, after = values[i - 1], values[i]
        if before and abs(after - before) / before >= NOTABLE_CHANGE or (not before and after):
            wanted += [i, i - 1]
    wanted += [values.index(max(values)), values.index(min(values))]
    if n <= 6:
        wanted += list(range(n))
    placed: list[float] = []
    for i in wanted:
        point = points[i]
        if point.labelled or any(abs(point.x - x) < LABEL_SPACING for x in placed):
            continue
        point.labelled = True
        placed.append(point.x)
    for i, point in enumerate(points):
        # Above the point, unless the line rises into the label from the left or the point sits at the top.
        above = point.y - 8
        rising = i > 0 and points[i - 1].y < point.y - 4
        below = (point.y - TOP < 14 or rising) and point.y + 16 < HEIGHT - BOTTOM
        point.label_y = round(point.y + 16 if below else above, 1)


def _chart(key: str, title: str, unit: str, runs: list[SyncRun], values: list[float], texts: list[str],
           top_value: float, tick_text) -> Chart:
    plot_width = WIDTH - LEFT - RIGHT - 2 * INSET
    plot_height = HEIGHT - TOP - BOTTOM
    step = plot_width / (len(runs) - 1) if len(runs) > 1 else 0
    xs = [LEFT + INSET + (i * step if len(runs) > 1 else plot_width / 2) for i in range(len(runs))]
    ticks = nice_ticks(top_value)
    scale_top = ticks[-1] or 1

    def y_of(value: float) -> float:
        return TOP + plot_height - value / scale_top * plot_height

    points = [Point(x=round(x, 1), y=round(y_of(v), 1), value=v, text=t, when=_when(r.created_at), run_id=r.pk,
                    status=r.status)
              for x, v, t, r in zip(xs, values, texts, runs, strict=True)]
    _choose_labels(points, values)
    return Chart(key=key, title=title, unit=unit, points=points,
                 y_ticks=[(round(y_of(t), 1), tick_text(t)) for t in ticks],
                 x_ticks=_x_ticks(xs, _date_labels([r.created_at for r in runs])))


def history_charts(runs: list[SyncRun]) -> list[Chart]:
    """The charts of a sync's finished runs, oldest first: audience size on the platform, and match rate. A chart
    needs at least two runs that reported its figure."""
    charts = []
    sized = [r for r in runs if r.audience_size is not None]
    if len(sized) >= 2:
        values = [r.audience_size for r in sized]
        chart = _chart("size", "Audience size on the platform", "people", sized, values, [count(v) for v in values],
                       max(values), compact)
        chart.summary = _size_summary(sized)
        charts.append(chart)
    rated = [r for r in runs if r.match_rate is not None]
    if len(rated) >= 2:
        values = [r.match_rate * 100 for r in rated]
        chart = _chart("match_rate", "Match rate", "%", rated, values, [f"{round(v)} %" for v in values], 100,
                       lambda t: f"{t:.0f} %")
        chart.summary = _rate_summary(rated)
        charts.append(chart)
    return charts


def _size_summary(runs: list[SyncRun]) -> list[str]:
    last, previous = runs[-1], runs[-2]
    lines = [f"Last run: {size_change(previous.audience_size, last.audience_size)}."]
    falls = [(b.audience_size - a.audience_size, a, b) for a, b in zip(runs, runs[1:], strict=False)
             if b.audience_size < a.audience_size]
    if falls:
        _, a, b = min(falls, key=lambda f: f[0])
        if b is not last:
            lines.append(f"Largest fall: {size_change(a.audience_size, b.audience_size)} ({_when(b.created_at)}).")
    if len(runs) > 2:
        lines.append(f"Over {len(runs)} runs: {size_change(runs[0].audience_size, last.audience_size)}.")
    return lines


def _rate_summary(runs: list[SyncRun]) -> list[str]:
    lines = [f"Last run: {rate_change(runs[-2].match_rate, runs[-1].match_rate)}."]
    if len(runs) > 2:
        lines.append(f"Over {len(runs)} runs: {rate_change(runs[0].match_rate, runs[-1].match_rate)}.")
    return lines
