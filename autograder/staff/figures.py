"""The class report's figures: PNG bar charts whose bars link to the submissions behind them.

Each figure is drawn at a fixed size with matplotlib's Agg backend (no display needed), and returns each bar's
rectangle in the PNG's pixels, for an HTML image map: a click on a bar opens the list of its submissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: a batch runs on machines without a display
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

__all__ = ["DPI", "Area", "bar_chart", "scatter_changes"]

DPI = 100
BAR = "#3b6ea5"
ALERT = "#c0504d"


@dataclass(frozen=True)
class Area:
    """A clickable rectangle of a figure: pixels from the image's top left corner."""
    anchor: str  # the id of the HTML element listing its submissions
    title: str  # shown on hover
    box: tuple[int, int, int, int]  # left, top, right, bottom


def bar_chart(path: Path, labels: list[str], values: list[float], anchors: list[str], *, title: str,
              value_label: str, horizontal: bool = False, colors: list[str] | None = None,
              value_format: str = "{:g}", width: float = 8.0) -> list[Area]:
    """A bar per label (horizontal bars for long labels), each bar's value written beside it; returns the bars'
    areas. Horizontal bars run top to bottom in the given order."""
    if not (len(labels) == len(values) == len(anchors)):
        raise ValueError(f"labels, values and anchors differ in length: {len(labels)}, {len(values)}, {len(anchors)}")
    height = max(2.4, 0.9 + 0.32 * len(labels)) if horizontal else 3.4
    figure, axes = plt.subplots(figsize=(width, height), dpi=DPI)
    colors = colors or [BAR] * len(labels)
    positions = list(range(len(labels)))
    if horizontal:
        bars = axes.barh(positions, values, color=colors, height=0.7)
        axes.set_yticks(positions, labels, fontsize=8)
        axes.invert_yaxis()
        axes.set_xlabel(value_label)
    else:
        bars = axes.bar(positions, values, color=colors, width=0.85)
        axes.set_xticks(positions, labels, fontsize=8, rotation=0 if len(labels) <= 12 else 45,
                        ha="center" if len(labels) <= 12 else "right")
        axes.set_ylabel(value_label)
    top = max(values, default=0) or 1
    for bar, value in zip(bars, values):
        if not value:
            continue  # an empty bin needs no "0" above it
        if horizontal:
            axes.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, value_format.format(value),
                      va="center", fontsize=8)
        else:
            axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), value_format.format(value),
                      ha="center", va="bottom", fontsize=8)
    if horizontal:
        axes.set_xlim(0, top * 1.12)
    else:
        axes.set_ylim(0, top * 1.15)
    if all(float(v).is_integer() for v in values):  # counts: no 0.25 of a student on the axis
        (axes.xaxis if horizontal else axes.yaxis).set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title, fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    areas = _areas(figure, axes, bars, anchors, labels, values, horizontal)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return areas


def scatter_changes(path: Path, recorded: list[float], ours: list[float], changed: list[bool], *,
                    title: str) -> None:
    """Gradescope's score against this regrade's, one dot per submission; the ones that moved in red."""
    figure, axes = plt.subplots(figsize=(4.6, 4.0), dpi=DPI)
    same = [(r, o) for r, o, c in zip(recorded, ours, changed) if not c]
    moved = [(r, o) for r, o, c in zip(recorded, ours, changed) if c]
    if same:
        xs, ys = zip(*same)
        axes.scatter(xs, ys, s=14, color=BAR, alpha=0.6, label=f"unchanged ({len(same)})")
    if moved:
        xs, ys = zip(*moved)
        axes.scatter(xs, ys, s=22, color=ALERT, label=f"changed ({len(moved)})")
    top = max(recorded + ours, default=1) or 1
    axes.plot([0, top], [0, top], color="#999999", linewidth=0.8)
    axes.set_xlabel("score Gradescope recorded")
    axes.set_ylabel("score of this regrade")
    axes.set_title(title, fontsize=11)
    axes.legend(fontsize=8, loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)


def _areas(figure, axes, bars, anchors: list[str], labels: list[str], values: list[float],
           horizontal: bool) -> list[Area]:
    """Each bar's band across the plot (the whole row or column, so short bars are easy to click)."""
    figure.canvas.draw()
    height = figure.canvas.get_width_height()[1]
    plot = axes.get_window_extent()
    areas = []
    for bar, anchor, label, value in zip(bars, anchors, labels, values):
        box = bar.get_window_extent()
        if horizontal:
            left, right, bottom, top = plot.x0, plot.x1, box.y0, box.y1
        else:
            left, right, bottom, top = box.x0, box.x1, plot.y0, plot.y1
        areas.append(Area(anchor, f"{label}: {value:g}",
                          (int(left), int(height - top), int(right) + 1, int(height - bottom) + 1)))
    return areas
