"""The usage report's plots as shapes for inline SVG (templates/usage-report.html.j2 draws them): bars
per day or lines over time, each point carrying its series, day or time and value (data attributes
and a <title>, which a browser shows on hover and a test reads)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 24, 36
INNER_WIDTH, INNER_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
# Tol's "bright" qualitative scheme: told apart by colour-blind readers too.
COLORS = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb")
# Digits a value keeps, by unit (counts: none).
DIGITS = {"GiB": 2, "%": 1, "seconds": 1, "CPU hours": 2}
# Fewer day labels than this on the x axis: one every few days beyond.
DAY_LABELS = 14


def nice_top(value: float) -> float:
    """The y axis' top: the least of 1, 2 or 5 times a power of ten at or above value (1 for none)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def shown(value: float, unit: str) -> str:
    return f"{value:.{DIGITS.get(unit, 0)}f}"


def draw(plot, period) -> dict:
    """A plot's shapes: bars or lines with their dots, the axes' ticks and the legend."""
    values = [value for points in plot.series.values() for value in points.values()]
    top = nice_top(max(values, default=0))

    def y(value: float) -> float:
        return round(TOP + (1 - value / top) * INNER_HEIGHT, 1)

    names = list(plot.series)
    colors = {name: COLORS[index % len(COLORS)] for index, name in enumerate(names)}
    slot = INNER_WIDTH / period.days
    every = math.ceil(period.days / DAY_LABELS)
    shapes = {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "bottom": TOP + INNER_HEIGHT,
        "empty": not values,
        "legend": [{"name": name, "color": colors[name]} for name in names],
        "y_ticks": [{"y": y(value), "label": f"{value:g}"} for value in (0, top / 2, top)],
        "bars": [],
        "lines": [],
    }
    centre = plot.kind == "bars"
    shapes["x_ticks"] = [
        {"x": round(LEFT + slot * (index + (0.5 if centre else 0)), 1), "label": f"{day:%m-%d}"}
        for index, day in enumerate(period.dates)
        if index % every == 0
    ]
    if plot.kind == "bars":
        width = slot * 0.8 / max(len(names), 1)
        for number, name in enumerate(names):
            for index, day in enumerate(period.dates):
                value = plot.series[name].get(day)
                if value is None:
                    continue
                shapes["bars"].append(
                    {
                        "x": round(LEFT + slot * (index + 0.1) + width * number, 1),
                        "y": y(value),
                        "width": round(width, 1),
                        "height": round(TOP + INNER_HEIGHT - y(value), 1),
                        "color": colors[name],
                        "series": name,
                        "day": day.isoformat(),
                        "value": shown(value, plot.unit),
                        "title": f"{name}, {day.isoformat()}: {shown(value, plot.unit)} {plot.unit}",
                    }
                )
        return shapes
    span = max(period.now - period.start, 1)
    for name in names:
        dots = []
        for time, value in sorted(plot.series[name].items()):
            when = f"{datetime.fromtimestamp(time, UTC):%Y-%m-%d %H:%M}"
            dots.append(
                {
                    "time": time,
                    "x": round(LEFT + (time - period.start) / span * INNER_WIDTH, 1),
                    "y": y(value),
                    "when": when,
                    "value": shown(value, plot.unit),
                    "title": f"{name}, {when} UTC: {shown(value, plot.unit)} {plot.unit}",
                }
            )
        shapes["lines"].append({"series": name, "color": colors[name], "segments": segments(dots, period.step)})
    return shapes


def segments(dots: list[dict], step: float) -> list[dict]:
    """Dots as runs without gaps (a server stopped, a file system unmounted): each run its own polyline."""
    runs: list[list[dict]] = []
    for dot in dots:
        if runs and dot["time"] - runs[-1][-1]["time"] <= 1.5 * step:
            runs[-1].append(dot)
        else:
            runs.append([dot])
    return [{"points": " ".join(f"{d['x']},{d['y']}" for d in run), "dots": run} for run in runs]
