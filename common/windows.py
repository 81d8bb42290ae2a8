"""Plan windows in trading days, and straight lines through (days, seconds) points.

Pure Python on purpose: a handful of points per fit, and the supervisor must start without
numpy. Windows are counted in trading days (Mon–Fri) because a weekend adds calendar days
but no bars, so calendar days would make every week look cheaper per day than a month.
The report fits wall time against them; the supervisor's ETA does the same with entry times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import median


def trading_days(start: date, end: date) -> int:
    """Monday–Friday dates from ``start`` to ``end``, both included; holidays are not removed."""
    if end < start:
        return 0
    whole_weeks, rest = divmod((end - start).days + 1, 7)
    extra = sum(1 for offset in range(rest) if (start + timedelta(days=offset)).weekday() < 5)
    return whole_weeks * 5 + extra


def window_days(start: date, end: date) -> int:
    """Trading days a plan window covers: LumiBot stops at the midnight that starts ``end``, so
    the window is ``start`` up to the day before ``end``."""
    return trading_days(start, end - timedelta(days=1))


@dataclass(frozen=True)
class LineFit:
    """``y = intercept + slope·x`` by least squares, with the share of variance it explains."""

    intercept: float
    slope: float
    r_squared: float
    points: int

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """Ordinary least squares; None when fewer than two distinct x values make the slope undefined."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return _scored(xs, ys, mean_y - slope * mean_x, slope)


def robust_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """Theil–Sen: the median of pairwise slopes, then the median intercept.

    One pathological window (say a month that re-reads its data on every bar) drags a
    least-squares line far off; the median ignores it, so the line can be used to spot it.
    """
    if len(xs) != len(ys) or len(set(xs)) < 2:
        return None
    pairs = list(zip(xs, ys, strict=True))
    slopes = [(y1 - y0) / (x1 - x0) for i, (x0, y0) in enumerate(pairs) for x1, y1 in pairs[i + 1 :] if x1 != x0]
    slope = median(slopes)
    return _scored(xs, ys, median([y - slope * x for x, y in pairs]), slope)


def _scored(xs: Sequence[float], ys: Sequence[float], intercept: float, slope: float) -> LineFit:
    mean_y = sum(ys) / len(ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    r_squared = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return LineFit(intercept, slope, r_squared, len(xs))
