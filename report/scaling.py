"""How cost grows with window length: trading days, straight-line fits and growth exponents.

Pure Python on purpose: a handful of points per fit, and the supervisor must start without
numpy. Windows are counted in trading days (Mon–Fri) because a weekend adds calendar days
but no bars, so calendar days would make every week look cheaper per day than a month.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from statistics import median

SUPERLINEAR_EXPONENT = 1.15
"""Above this, a function's time grows clearly faster than the window (10 % over linear
would still be within run-to-run noise on a handful of short windows)."""


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


def growth_exponent(points: Sequence[tuple[float, float]]) -> LineFit | None:
    """Fit ``log y = c + k·log x``; the slope ``k`` is the exponent (1 = linear, 2 = quadratic).

    Points with a non-positive x or y carry no information on a log scale and are dropped.
    """
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    return fit_line([x for x, _ in usable], [y for _, y in usable])


@dataclass(frozen=True)
class Marginal:
    """What each extra trading day cost between two window lengths (mean wall time per length)."""

    from_days: int
    to_days: int
    seconds_per_day: float


def marginal_costs(points: Iterable[tuple[int, float]], merge_ratio: float = 1.5) -> list[Marginal]:
    """Cost per extra trading day between successive groups of window lengths.

    Unlike one straight-line fit this shows *where* cost per day rises: a fixed start-up cost
    makes short windows dear per day, growing state makes long ones dear. Lengths within
    ``merge_ratio`` of a group's shortest (a 20- and a 22-day month) form one group, since a
    slope over two days would be all noise.
    """
    groups: list[list[tuple[int, float]]] = []
    for days, seconds in sorted(points):
        if groups and days <= groups[-1][0][0] * merge_ratio:
            groups[-1].append((days, seconds))
        else:
            groups.append([(days, seconds)])
    means = [
        (round(sum(d for d, _ in g) / len(g)), sum(d for d, _ in g) / len(g), sum(s for _, s in g) / len(g)) for g in groups
    ]
    return [Marginal(d0, d1, (s1 - s0) / (x1 - x0)) for (d0, x0, s0), (d1, x1, s1) in pairwise(means)]


@dataclass(frozen=True)
class Growth:
    """One function whose time grows with the window: its exponent and its largest observation."""

    key: str
    exponent: float
    r_squared: float
    runs: int
    longest_days: int
    longest_seconds: float

    def projected(self, days: int) -> float:
        """Seconds at ``days`` trading days if the power law holds beyond the longest run."""
        return self.longest_seconds * (days / self.longest_days) ** self.exponent

    def linear(self, days: int) -> float:
        """Seconds at ``days`` trading days had it grown in step with the window."""
        return self.longest_seconds * days / self.longest_days


def superlinear(
    samples: Mapping[str, Sequence[tuple[int, float]]],
    *,
    min_runs: int = 3,
    threshold: float = SUPERLINEAR_EXPONENT,
) -> list[Growth]:
    """Functions whose time grows faster than the window, heaviest in the longest run first.

    ``samples`` maps a function to ``(trading days, seconds)`` per run it appears in. A
    function needs ``min_runs`` runs over at least two window lengths, or one fit per
    function would be drawn through two points and call noise a trend.
    """
    found: list[Growth] = []
    for key, points in samples.items():
        if len(points) < min_runs:
            continue
        fit = growth_exponent(points)
        if fit is None or fit.slope <= threshold:
            continue
        longest_days = max(days for days, _ in points)
        longest_seconds = max(seconds for days, seconds in points if days == longest_days)
        found.append(Growth(key, fit.slope, fit.r_squared, len(points), longest_days, longest_seconds))
    return sorted(found, key=lambda g: g.longest_seconds, reverse=True)
