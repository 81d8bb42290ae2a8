"""PNG charts beside the report, one small class per chart, each with one ``render(path)``.

matplotlib is imported inside ``render`` only, and draws on the Agg canvas directly (no
pyplot, no display): ``python -m supervisor`` must start fast and work on a headless box.
Each ``render`` returns False, writing nothing, when it has nothing to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from common.windows import LineFit

PHASE_COLOURS = {"phase0": "#9e9e9e", "phase1": "#1f77b4", "outlier": "#d62728"}


class Chart(Protocol):
    def render(self, path: Path) -> bool: ...


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


@dataclass(frozen=True)
class Bar:
    """One run; ``kind`` is ``phase0``, ``phase1`` or ``outlier`` and picks the colour."""

    label: str
    seconds: float
    kind: str = "phase1"


class WallPerRunChart:
    """Wall seconds per run, in plan order; Phase 0 probes in grey, outliers in red."""

    def __init__(self, bars: Sequence[Bar]) -> None:
        self.bars = list(bars)

    def render(self, path: Path) -> bool:
        if not self.bars:
            return False
        figure, axes = _figure(max(6.0, 0.6 * len(self.bars) + 2), 4.2)
        positions = range(len(self.bars))
        axes.bar(positions, [b.seconds for b in self.bars], color=[PHASE_COLOURS[b.kind] for b in self.bars])
        for x, bar in zip(positions, self.bars, strict=True):
            axes.annotate(f"{bar.seconds:.1f}", (x, bar.seconds), ha="center", va="bottom", fontsize=8)
        axes.set_xticks(list(positions), [b.label for b in self.bars], rotation=35, ha="right", fontsize=8)
        axes.set_ylabel("wall seconds")
        kinds = {b.kind for b in self.bars}
        notes = [n for k, n in (("phase0", "grey: Phase 0 cache probes"), ("outlier", "red: outliers")) if k in kinds]
        axes.set_title("Wall time per run" + (f" ({'; '.join(notes)})" if notes else ""), fontsize=10)
        _save(figure, path)
        return True


class WallVsDaysChart:
    """Wall seconds against trading days for Phase 1 runs, with the least-squares line (outliers as red crosses)."""

    def __init__(self, points: Sequence[tuple[int, float, str]], fit: LineFit | None, outliers: Sequence[str] = ()) -> None:
        self.points = list(points)
        self.fit = fit
        self.outliers = set(outliers)

    def render(self, path: Path) -> bool:
        if not self.points:
            return False
        figure, axes = _figure(6.5, 4.2)
        days = [p[0] for p in self.points]
        ordinary = [p for p in self.points if p[2] not in self.outliers]
        odd = [p for p in self.points if p[2] in self.outliers]
        axes.scatter([p[0] for p in ordinary], [p[1] for p in ordinary], color=PHASE_COLOURS["phase1"], zorder=3, label="runs")
        if odd:
            xs, ys = [p[0] for p in odd], [p[1] for p in odd]
            axes.scatter(xs, ys, color="#d62728", marker="x", zorder=3, label="outliers (not fitted)")
        for (x, y), label in _labels(self.points).items():
            axes.annotate(label, (x, y), textcoords="offset points", xytext=(5, -3), fontsize=7)
        if self.fit is not None:
            xs = [0, max(days)]
            axes.plot(
                xs,
                [self.fit.at(x) for x in xs],
                color="#444444",
                linestyle="--",
                label=f"wall = {self.fit.intercept:.2f} + {self.fit.slope:.3f}·days  (R² = {self.fit.r_squared:.3f})",
            )
        axes.legend(fontsize=8, loc="lower right")
        axes.set_xlim(left=0)
        axes.set_ylim(bottom=0)
        axes.set_xlabel("trading days in the window (Mon–Fri)")
        axes.set_ylabel("wall seconds")
        axes.set_title("Phase 1: wall time against window length")
        _save(figure, path)
        return True


class TopOffendersChart:
    """The heaviest functions by cumulative seconds summed over runs, heaviest at the top."""

    def __init__(self, items: Sequence[tuple[str, float]], title: str) -> None:
        self.items = list(items)
        self.title = title

    def render(self, path: Path) -> bool:
        if not self.items:
            return False
        figure, axes = _figure(10.0, 0.42 * len(self.items) + 1.4)
        labels = [_shorten(name) for name, _ in reversed(self.items)]
        values = [seconds for _, seconds in reversed(self.items)]
        axes.barh(range(len(values)), values, color=PHASE_COLOURS["phase1"])
        axes.set_yticks(list(range(len(values))), labels, fontsize=8)
        for y, value in enumerate(values):
            axes.annotate(f"{value:.1f}", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        axes.set_xlabel("cumulative wall seconds, summed over runs")
        axes.set_title(self.title, fontsize=10)
        _save(figure, path)
        return True


def _labels(points: Sequence[tuple[int, float, str]]) -> dict[tuple[int, float], str]:
    """One label per cluster of runs of the same length and similar time (four one-week runs
    would otherwise print on top of each other)."""
    labels: dict[tuple[int, float], list[str]] = {}
    near = 0.04 * max((abs(y) for _, y, _ in points), default=1.0)  # 4 % of the y axis: labels would touch
    for x, y, name in points:
        anchor = next((a for a in labels if a[0] == x and abs(a[1] - y) <= near), (x, y))
        labels.setdefault(anchor, []).append(name)
    return {a: names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}" for a, names in labels.items()}


def _shorten(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
