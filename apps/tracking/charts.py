"""Server-side SVG charts for the admin dashboard: geometry here, markup in the template.

No JavaScript and no asset from elsewhere: the admin works offline (SPEC §7).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 560, 150
# Room for the value labels on the left and the day labels below the bars.
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22


@dataclass(frozen=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    width: float
    height: float
    label_x: float  # centre of the bar, for its day label
    show_label: bool  # every other day is labelled, so the labels never overlap


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    top_value: int
    bottom_value: int
    zero_y: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_x: int = WIDTH - RIGHT
    top_y: int = TOP
    bottom_y: int = HEIGHT - BOTTOM
    label_y: int = HEIGHT - 6


def bar_chart(title: str, series: Sequence[tuple[date, int]]) -> BarChart:
    """One bar per (day, value), scaled from min(0, lowest) to max(0, highest): a negative day hangs below the zero line."""
    top_value = max([0, *(value for _, value in series)])
    bottom_value = min([0, *(value for _, value in series)])
    span = (top_value - bottom_value) or 1
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(len(series), 1)

    def y_of(value: int) -> float:
        return TOP + (top_value - value) / span * plot_height

    zero_y = y_of(0)
    bars = []
    for index, (day, value) in enumerate(series):
        y = y_of(value)
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(LEFT + index * slot + slot * 0.15, 1),
                y=round(min(y, zero_y), 1),
                width=round(slot * 0.7, 1),
                height=round(abs(zero_y - y), 1),
                label_x=round(LEFT + index * slot + slot / 2, 1),
                show_label=(len(series) - 1 - index) % 2 == 0,  # today is always labelled
            )
        )
    return BarChart(title=title, bars=bars, top_value=top_value, bottom_value=bottom_value, zero_y=round(zero_y, 1))
